//! JSON messages decoded in one pass straight into a known schema's columns.
//!
//! `arrow_json` builds a tape of every message first and then walks it once per column; most of a
//! topic read went there. A [`JsonDecoder`] parses each message once, appending each value to its
//! column as it goes, and skips the members the query does not need without converting them.
//!
//! It covers the types topic tables have (Utf8, Int32, Int64, Float32, Float64, Boolean, List and
//! Struct of those) and the JSON that vcfq's encoder writes. Whatever else it meets — another
//! type, a number where text belongs, a duplicate member, a lone surrogate, a key with escapes —
//! it declines the whole batch ([`JsonDecoder::decode`] returns `None`) and the caller decodes
//! it with `arrow_json`, so results and errors stay `arrow_json`'s: this is a fast path, never a
//! second dialect. Members are found by name in any order (the schema's order is tried first);
//! members the schema does not name are skipped, but must still be valid JSON.

use std::sync::Arc;

use datafusion::arrow::array::builder::{BooleanBufferBuilder, NullBufferBuilder};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, ListArray,
    RecordBatch, RecordBatchOptions, StringArray, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, FieldRef, Fields, SchemaRef};

/// Nesting deeper than this is left to `arrow_json` (no recursion without a bound).
const MAX_DEPTH: usize = 64;

/// Why a batch was declined: the caller falls back to `arrow_json`, which gives the answer or
/// the error.
#[derive(Debug)]
struct Decline;

type Step<T = ()> = Result<T, Decline>;

/// Decodes batches of JSON objects into rows of one schema (see the module docs).
#[derive(Debug)]
pub struct JsonDecoder {
    schema: SchemaRef,
    root: Object,
}

impl JsonDecoder {
    /// A decoder for `schema`, or `None` when a column has a type this decoder leaves to
    /// `arrow_json`.
    pub fn new(schema: SchemaRef) -> Option<Self> {
        let root = Object::new(schema.fields())?;
        Some(JsonDecoder { schema, root })
    }

    /// One row per message, or `None` when any message is outside what this decoder reads
    /// exactly as `arrow_json` does (the caller then decodes them with `arrow_json`).
    pub fn decode<'a>(&mut self, messages: impl Iterator<Item = &'a [u8]>) -> Option<RecordBatch> {
        let mut rows = 0;
        let decoded = (|| {
            for message in messages {
                // no UTF-8 check of the whole message: bytes above ASCII are valid only inside
                // strings, where each such sequence is checked where the scan meets it
                let mut p = Parser {
                    bytes: message,
                    at: 0,
                };
                p.ws();
                p.object(&mut self.root, 0)?;
                p.ws();
                if p.at != p.bytes.len() {
                    return Err(Decline);
                }
                rows += 1;
            }
            Ok(())
        })();
        // the columns are emptied either way, so a declined batch leaves nothing behind
        let arrays = self.root.finish(self.schema.fields());
        decoded.ok()?;
        let arrays = arrays.ok()?;
        RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .ok()
    }
}

/// The members of a JSON object that become columns (a struct, or the row itself).
#[derive(Debug)]
struct Object {
    names: Vec<Box<[u8]>>,
    columns: Vec<Column>,
    /// `seen[i] == round`: member `i` came in the object being read.
    seen: Vec<u32>,
    round: u32,
}

impl Object {
    fn new(fields: &Fields) -> Option<Self> {
        Some(Object {
            names: fields.iter().map(|f| f.name().as_bytes().into()).collect(),
            columns: fields
                .iter()
                .map(|f| Column::new(f.data_type(), f.is_nullable()))
                .collect::<Option<_>>()?,
            seen: vec![0; fields.len()],
            round: 0,
        })
    }

    /// The member named `key` (`hint`: where the schema's order puts the next one).
    fn find(&self, key: &[u8], hint: usize) -> Option<usize> {
        if self.names.get(hint).is_some_and(|n| same(n, key)) {
            return Some(hint);
        }
        self.names.iter().position(|n| same(n, key))
    }

    /// The members' arrays, each column emptied (all of them, also when one fails).
    fn finish(&mut self, fields: &Fields) -> Step<Vec<ArrayRef>> {
        let arrays: Vec<Step<ArrayRef>> = self
            .columns
            .iter_mut()
            .zip(fields)
            .map(|(c, f)| c.finish(f))
            .collect();
        arrays.into_iter().collect()
    }

    /// A null for every member (the object itself is null).
    fn append_null_members(&mut self) {
        for c in &mut self.columns {
            c.append_masked_null();
        }
    }
}

/// Whether two member names are the same, compared in line (names are short: a call to
/// `memcmp` per member cost more than the comparison).
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// A column being built, with whether the schema lets it hold nulls.
#[derive(Debug)]
struct Column {
    nullable: bool,
    nulls: NullBufferBuilder,
    values: Values,
}

#[derive(Debug)]
enum Values {
    Utf8 {
        offsets: Vec<i32>,
        bytes: Vec<u8>,
    },
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    Boolean(BooleanBufferBuilder),
    List {
        offsets: Vec<i32>,
        item: Box<Column>,
    },
    Struct(Box<Object>),
}

impl Column {
    fn new(data_type: &DataType, nullable: bool) -> Option<Self> {
        let values = match data_type {
            DataType::Utf8 => Values::Utf8 {
                offsets: vec![0],
                bytes: Vec::new(),
            },
            DataType::Int32 => Values::Int32(Vec::new()),
            DataType::Int64 => Values::Int64(Vec::new()),
            DataType::Float32 => Values::Float32(Vec::new()),
            DataType::Float64 => Values::Float64(Vec::new()),
            DataType::Boolean => Values::Boolean(BooleanBufferBuilder::new(0)),
            DataType::List(item) => Values::List {
                offsets: vec![0],
                item: Box::new(Column::new(item.data_type(), item.is_nullable())?),
            },
            DataType::Struct(fields) => Values::Struct(Box::new(Object::new(fields)?)),
            _ => return None,
        };
        Some(Column {
            nullable,
            nulls: NullBufferBuilder::new(0),
            values,
        })
    }

    /// A JSON `null` or a missing member: declined where the schema allows no null.
    fn append_null(&mut self) -> Step {
        if !self.nullable {
            return Err(Decline);
        }
        self.append_masked_null();
        Ok(())
    }

    /// A null under a null parent (allowed in any column: the parent masks it).
    fn append_masked_null(&mut self) {
        self.nulls.append_null();
        match &mut self.values {
            Values::Utf8 { offsets, bytes } => offsets.push(bytes.len() as i32),
            Values::Int32(v) => v.push(0),
            Values::Int64(v) => v.push(0),
            Values::Float32(v) => v.push(0.0),
            Values::Float64(v) => v.push(0.0),
            Values::Boolean(v) => v.append(false),
            Values::List { offsets, .. } => offsets.push(*offsets.last().unwrap_or(&0)),
            Values::Struct(object) => object.append_null_members(),
        }
    }

    /// The column's array; the column is left empty, ready for the next batch.
    fn finish(&mut self, field: &FieldRef) -> Step<ArrayRef> {
        let nulls = self.nulls.finish();
        let array: ArrayRef = match (&mut self.values, field.data_type()) {
            (Values::Utf8 { offsets, bytes }, _) => Arc::new(
                StringArray::try_new(offsets_of(offsets), std::mem::take(bytes).into(), nulls)
                    .map_err(|_| Decline)?,
            ),
            (Values::Int32(v), _) => Arc::new(Int32Array::new(std::mem::take(v).into(), nulls)),
            (Values::Int64(v), _) => Arc::new(Int64Array::new(std::mem::take(v).into(), nulls)),
            (Values::Float32(v), _) => Arc::new(Float32Array::new(std::mem::take(v).into(), nulls)),
            (Values::Float64(v), _) => Arc::new(Float64Array::new(std::mem::take(v).into(), nulls)),
            (Values::Boolean(v), _) => Arc::new(BooleanArray::new(v.finish(), nulls)),
            (Values::List { offsets, item }, DataType::List(item_field)) => {
                let offsets = offsets_of(offsets);
                let values = item.finish(item_field)?;
                Arc::new(
                    ListArray::try_new(Arc::clone(item_field), offsets, values, nulls)
                        .map_err(|_| Decline)?,
                )
            }
            (Values::Struct(object), DataType::Struct(fields)) => {
                let children = object.finish(fields)?;
                Arc::new(
                    StructArray::try_new(fields.clone(), children, nulls).map_err(|_| Decline)?,
                )
            }
            _ => return Err(Decline),
        };
        Ok(array)
    }
}

/// The offsets pushed, as a buffer (they only grow: an i32 overflow is declined when pushed),
/// `offsets` left holding the first offset of the next batch.
fn offsets_of(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into())
}

/// Which bytes end the plain run of a string: `"`, `\` and the control characters JSON does
/// not allow unescaped (so also the bytes a writer must escape).
pub(crate) const STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Which bytes end the plain run of a string being read: those of [`STRING_STOP`] and every
/// byte above ASCII (a UTF-8 sequence, checked on its own).
const READ_STOP: [bool; 256] = {
    let mut t = STRING_STOP;
    let mut i = 0x80;
    while i < 0x100 {
        t[i] = true;
        i += 1;
    }
    t
};

/// [`string_stops`] with every byte above ASCII marked too ([`READ_STOP`]).
#[inline]
fn read_stops(word: u64) -> u64 {
    string_stops(word) | (word & 0x8080_8080_8080_8080)
}

/// How long the UTF-8 sequence a byte above ASCII starts is (`None`: it starts none).
#[inline]
fn utf8_width(lead: u8) -> Option<usize> {
    match lead {
        0xc2..=0xdf => Some(2),
        0xe0..=0xef => Some(3),
        0xf0..=0xf4 => Some(4),
        _ => None,
    }
}

/// Eight bytes (little-endian) with the high bit of each byte set where that byte is a
/// [`STRING_STOP`]; exact up to the lowest set bit (a borrow may mark bytes above a stop),
/// which is all [`Parser::plain_run`] reads.
#[inline]
pub(crate) fn string_stops(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // bytes below `n` (n ≤ 128): the classic "has less" test
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGH;
    below(word, 0x20)
        | below(word ^ (ONES * u64::from(b'"')), 1)
        | below(word ^ (ONES * u64::from(b'\\')), 1)
}

/// A cursor over one message.
struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline]
    fn eat(&mut self, byte: u8) -> Step {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(Decline)
        }
    }

    /// After an opening bracket: whether `close` follows at once (an empty object or array,
    /// stepped over).
    #[inline]
    fn empty(&mut self, close: u8) -> bool {
        self.ws();
        let empty = self.peek() == Some(close);
        if empty {
            self.at += 1;
        }
        empty
    }

    /// After a member or item: whether another follows (`,`, stepped over) or the container
    /// ends (`close`, stepped over); anything else is declined.
    #[inline]
    fn more(&mut self, close: u8) -> Step<bool> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                self.ws();
                Ok(true)
            }
            Some(c) if c == close => {
                self.at += 1;
                Ok(false)
            }
            _ => Err(Decline),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Step {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Decline)
        }
    }

    /// `{ "member": value, … }` into `object`'s columns; members it has no column for are
    /// skipped, members it has and that did not come are null.
    fn object(&mut self, object: &mut Object, depth: usize) -> Step {
        if depth > MAX_DEPTH {
            return Err(Decline);
        }
        self.eat(b'{')?;
        object.round = object.round.wrapping_add(1);
        if object.round == 0 {
            object.seen.fill(0);
            object.round = 1;
        }
        let round = object.round;
        let mut next = 0;
        if !self.empty(b'}') {
            loop {
                let key = self.plain_key()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                match object.find(key, next) {
                    Some(i) => {
                        if object.seen[i] == round {
                            return Err(Decline);
                        }
                        object.seen[i] = round;
                        self.value(&mut object.columns[i], depth + 1)?;
                        next = i + 1;
                    }
                    None => self.skip(depth + 1)?,
                }
                if !self.more(b'}')? {
                    break;
                }
            }
        }
        for (i, column) in object.columns.iter_mut().enumerate() {
            if object.seen[i] != round {
                column.append_null()?;
            }
        }
        Ok(())
    }

    /// A member name without escapes (one with escapes is declined).
    #[inline]
    fn plain_key(&mut self) -> Step<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.at;
        let end = self.plain_run(start);
        if self.bytes.get(end) != Some(&b'"') {
            return Err(Decline);
        }
        self.at = end + 1;
        Ok(&self.bytes[start..end])
    }

    /// Where the run of plain ASCII string bytes starting at `from` ends ([`READ_STOP`]):
    /// eight bytes at a time while eight are left, then byte by byte.
    #[inline]
    fn plain_run(&self, from: usize) -> usize {
        let mut end = from;
        while let Some(chunk) = self.bytes[end..].first_chunk::<8>() {
            let stops = read_stops(u64::from_le_bytes(*chunk));
            if stops != 0 {
                return end + (stops.trailing_zeros() / 8) as usize;
            }
            end += 8;
        }
        while let Some(&b) = self.bytes.get(end) {
            if READ_STOP[b as usize] {
                break;
            }
            end += 1;
        }
        end
    }

    /// One value into `column`.
    fn value(&mut self, column: &mut Column, depth: usize) -> Step {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return column.append_null();
        }
        match &mut column.values {
            Values::Utf8 { offsets, bytes } => {
                self.string::<true>(bytes)?;
                offsets.push(i32::try_from(bytes.len()).map_err(|_| Decline)?);
            }
            Values::Int32(v) => {
                let n = self.integer()?;
                v.push(i32::try_from(n).map_err(|_| Decline)?);
            }
            Values::Int64(v) => v.push(self.integer()?),
            // parsed as arrow_json parses them (lexical_core), so to the same values
            Values::Float32(v) => v.push(finite(lexical_core::parse::<f32>(self.number()?))?),
            Values::Float64(v) => v.push(finite(lexical_core::parse::<f64>(self.number()?))?),
            Values::Boolean(v) => match self.peek() {
                Some(b't') => {
                    self.literal(b"true")?;
                    v.append(true);
                }
                Some(b'f') => {
                    self.literal(b"false")?;
                    v.append(false);
                }
                _ => return Err(Decline),
            },
            Values::List { offsets, item } => {
                self.eat(b'[')?;
                if depth > MAX_DEPTH {
                    return Err(Decline);
                }
                let mut count: i32 = 0;
                if !self.empty(b']') {
                    loop {
                        self.value(item, depth + 1)?;
                        count += 1;
                        if !self.more(b']')? {
                            break;
                        }
                    }
                }
                let last = *offsets.last().unwrap_or(&0);
                offsets.push(last.checked_add(count).ok_or(Decline)?);
            }
            Values::Struct(object) => self.object(object, depth)?,
        }
        column.nulls.append_non_null();
        Ok(())
    }

    /// A JSON string, its text appended to `out` when `KEEP` (otherwise only checked and
    /// stepped over; `out` then receives at most the escapes).
    fn string<const KEEP: bool>(&mut self, out: &mut Vec<u8>) -> Step {
        self.eat(b'"')?;
        loop {
            let end = self.plain_run(self.at);
            if KEEP {
                out.extend_from_slice(&self.bytes[self.at..end]);
            }
            self.at = end;
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.at += 1;
                    self.escape(out)?;
                }
                Some(lead) if lead >= 0x80 => {
                    let width = utf8_width(lead).ok_or(Decline)?;
                    let sequence = self.bytes.get(self.at..self.at + width).ok_or(Decline)?;
                    // one character: std's check of overlong forms and surrogates
                    std::str::from_utf8(sequence).map_err(|_| Decline)?;
                    if KEEP {
                        out.extend_from_slice(sequence);
                    }
                    self.at += width;
                }
                _ => return Err(Decline),
            }
        }
    }

    /// The escape after a `\`.
    fn escape(&mut self, out: &mut Vec<u8>) -> Step {
        let byte = self.peek().ok_or(Decline)?;
        self.at += 1;
        let plain = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let first = self.hex4()?;
                let code = match first {
                    0xd800..=0xdbff => {
                        self.literal(b"\\u")?;
                        let low = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(Decline);
                        }
                        0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(Decline),
                    _ => first,
                };
                let c = char::from_u32(code).ok_or(Decline)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return Ok(());
            }
            _ => return Err(Decline),
        };
        out.push(plain);
        Ok(())
    }

    fn hex4(&mut self) -> Step<u32> {
        let digits = self.bytes.get(self.at..self.at + 4).ok_or(Decline)?;
        let mut v = 0;
        for &d in digits {
            v = v * 16 + (d as char).to_digit(16).ok_or(Decline)?;
        }
        self.at += 4;
        Ok(v)
    }

    /// A JSON integer (`-?(0|[1-9][0-9]*)`, no fraction or exponent: those are left to
    /// `arrow_json`).
    #[inline]
    fn integer(&mut self) -> Step<i64> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let start = self.at;
        let mut v: i64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            let d = i64::from(d - b'0');
            v = v.checked_mul(10).ok_or(Decline)?;
            v = if negative {
                v.checked_sub(d)
            } else {
                v.checked_add(d)
            }
            .ok_or(Decline)?;
            self.at += 1;
        }
        let digits = self.at - start;
        if digits == 0
            || (digits > 1 && self.bytes[start] == b'0')
            || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
        {
            return Err(Decline);
        }
        Ok(v)
    }

    /// A JSON number's bytes (checked against JSON's grammar).
    fn number(&mut self) -> Step<&'a [u8]> {
        let start = self.at;
        self.skip_number()?;
        Ok(&self.bytes[start..self.at])
    }

    /// Steps over a JSON number, checking it against JSON's grammar.
    fn skip_number(&mut self) -> Step {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let int = self.digits();
        if int == 0 || (int > 1 && self.bytes[self.at - int] == b'0') {
            return Err(Decline);
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(Decline);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(Decline);
            }
        }
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    /// Steps over one value of any kind, checking that it is valid JSON. Iterative: the
    /// containers open inside it are kept as bits (one per level, set for an object), and a
    /// value `depth + level` deep is declined past [`MAX_DEPTH`], as a call per level would be.
    fn skip(&mut self, depth: usize) -> Step {
        let mut open: u128 = 0;
        let mut level = 0usize;
        loop {
            // a value
            if depth + level > MAX_DEPTH {
                return Err(Decline);
            }
            match self.peek().ok_or(Decline)? {
                b'"' => self.skip_string()?,
                bracket @ (b'{' | b'[') => {
                    self.at += 1;
                    let object = bracket == b'{';
                    if !self.empty(if object { b'}' } else { b']' }) {
                        open = (open << 1) | u128::from(object);
                        level += 1;
                        if object {
                            self.member_name()?;
                        }
                        continue;
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => self.skip_number()?,
            }
            // after a value: the next one in its container, or the containers it closes
            loop {
                if level == 0 {
                    return Ok(());
                }
                let object = open & 1 == 1;
                if self.more(if object { b'}' } else { b']' })? {
                    if object {
                        self.member_name()?;
                    }
                    break;
                }
                open >>= 1;
                level -= 1;
            }
        }
    }

    /// A member's name and its `:` stepped over (within a skipped object).
    #[inline]
    fn member_name(&mut self) -> Step {
        self.skip_string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Ok(())
    }

    /// Steps over a string, checking it (one without escapes or non-ASCII bytes at once).
    #[inline]
    fn skip_string(&mut self) -> Step {
        if self.peek() == Some(b'"') {
            let end = self.plain_run(self.at + 1);
            if self.bytes.get(end) == Some(&b'"') {
                self.at = end + 1;
                return Ok(());
            }
        }
        self.string::<false>(&mut Vec::new())
    }
}

fn finite<T: Into<f64> + Copy, E>(parsed: Result<T, E>) -> Step<T> {
    match parsed {
        Ok(v) if v.into().is_finite() => Ok(v),
        _ => Err(Decline),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Array;
    use datafusion::arrow::datatypes::{Field, Schema};

    fn list(item: DataType) -> DataType {
        DataType::List(Arc::new(Field::new_list_field(item, true)))
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("chrom", DataType::Utf8, false),
            Field::new("pos", DataType::Int64, false),
            Field::new("id", DataType::Utf8, true),
            Field::new("alt", list(DataType::Utf8), true),
            Field::new("qual", DataType::Float64, true),
            Field::new(
                "info",
                DataType::Struct(
                    vec![
                        Field::new("DP", DataType::Int32, true),
                        Field::new("AF", list(DataType::Float64), true),
                        Field::new("F32", DataType::Float32, true),
                        Field::new("DB", DataType::Boolean, false),
                        Field::new("S", DataType::Utf8, true),
                    ]
                    .into(),
                ),
                true,
            ),
        ]))
    }

    /// What `arrow_json` makes of the same messages (`None`: an error).
    fn reference(schema: &SchemaRef, messages: &[&str]) -> Option<RecordBatch> {
        let mut d = arrow_json::ReaderBuilder::new(Arc::clone(schema))
            .with_batch_size(messages.len().max(1))
            .build_decoder()
            .ok()?;
        for m in messages {
            d.decode(m.as_bytes()).ok()?;
        }
        d.flush()
            .ok()?
            .or_else(|| Some(RecordBatch::new_empty(Arc::clone(schema))))
    }

    fn fast(schema: &SchemaRef, messages: &[&str]) -> Option<RecordBatch> {
        JsonDecoder::new(Arc::clone(schema))
            .unwrap()
            .decode(messages.iter().map(|m| m.as_bytes()))
    }

    #[test]
    fn a_plain_run_ends_at_the_first_stop_byte() {
        // every byte value at every place of a run longer than a word, after plain bytes and
        // after an earlier stop (where a borrow could mark the bytes above it)
        for filler in [b'a', 0x80, 0xff, b'!', b'#', b'[', b']'] {
            for value in 0..=255u8 {
                for at in 0..20 {
                    for second in [None, Some(at + 3)] {
                        let mut bytes = vec![filler; 24];
                        bytes[at] = value;
                        if let Some(s) = second {
                            bytes[s] = b'"';
                        }
                        let scalar = |from: usize| {
                            (from..bytes.len())
                                .find(|&i| READ_STOP[bytes[i] as usize])
                                .unwrap_or(bytes.len())
                        };
                        let p = Parser {
                            bytes: &bytes,
                            at: 0,
                        };
                        for from in [0, 1, at] {
                            assert_eq!(
                                p.plain_run(from),
                                scalar(from),
                                "{filler:#x} {value:#x} at {at} from {from}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn reads_what_arrow_json_reads() {
        let schema = schema();
        let messages = [
            r#"{"chrom":"chr1","pos":10,"id":"rs1","alt":["A","TT"],"qual":50.5,"info":{"DP":7,"AF":[0.1,1e-3,null],"F32":0.1,"DB":true,"S":"x"}}"#,
            // members in another order, missing ones, whitespace, an unknown member of each kind
            r#"{"chrom":"3","pos":4,"zz":[[],{},[{}],{"a":[]},{"b":{"c":[1,{"d":"e\"f"}]}},[[[0]]]]}"#,
            r#" { "pos" : -3 , "chrom" : "2", "zz": {"a": [1, 2.5e+3, "s\"", true, null, {}]}, "info": {"DB": false, "S": "tab\there \u00e9 \ud83e\udde1 \/"}, "alt": [] } "#,
            r#"{"chrom":"c","pos":0,"info":null,"alt":null,"qual":0}"#,
            r#"{"chrom":"ü","pos":9223372036854775807,"qual":-0.0,"info":{"DB":false,"AF":[]}}"#,
            // floats where parsers differ in the last bit if they are not exact
            r#"{"chrom":"f","pos":3,"qual":0.30000000000000004,"info":{"DB":true,"AF":[1.7976931348623157e308,5e-324,123456789012345678901234567890,1E+2,-2.2250738585072014E-308,0.1e1],"F32":16777217}}"#,
            r#"{"chrom":"g","pos":4,"qual":9007199254740993,"info":{"DB":false,"F32":3.4028235e38}}"#,
            r#"{"chrom":"h","pos":5,"info":{"DB":false,"F32":1.17549435e-38}}"#,
            // raw characters of two, three and four bytes, across words, read and skipped
            r#"{"chrom":"é🧡x€abcdefg🧡","pos":2,"zz":"ü€🧡 ü€🧡","info":{"DB":true,"S":"日本語のテキスト"}}"#,
        ];
        let got = fast(&schema, &messages).expect("decoded");
        let want = reference(&schema, &messages).unwrap();
        assert_eq!(got.num_rows(), 9);
        for (c, f) in schema.fields().iter().enumerate() {
            assert_eq!(
                got.column(c).as_ref(),
                want.column(c).as_ref(),
                "{}",
                f.name()
            );
        }
        assert_eq!(
            got.column(5)
                .as_any()
                .downcast_ref::<StructArray>()
                .unwrap()
                .column(4)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(2),
            "tab\there é 🧡 /"
        );
        // a decoder is reusable after a batch
        let mut d = JsonDecoder::new(Arc::clone(&schema)).unwrap();
        for _ in 0..2 {
            let b = d.decode(messages.iter().map(|m| m.as_bytes())).unwrap();
            assert_eq!(b.num_rows(), 9);
        }
        // and after a declined one: what that batch had appended is gone
        let declined = [messages[0], messages[1], r#"{"chrom":"1","pos":"x"}"#];
        assert!(d.decode(declined.iter().map(|m| m.as_bytes())).is_none());
        let b = d.decode(messages.iter().map(|m| m.as_bytes())).unwrap();
        for c in 0..schema.fields().len() {
            assert_eq!(b.column(c).as_ref(), want.column(c).as_ref());
        }
    }

    #[test]
    fn declines_what_it_does_not_read_exactly_as_arrow_json() {
        let schema = schema();
        let ok = r#"{"chrom":"1","pos":1}"#;
        for bad in [
            r#"{"chrom":"1","pos":"10"}"#,       // a number as text
            r#"{"chrom":1,"pos":1}"#,            // text as a number
            r#"{"chrom":"1","pos":1.0}"#,        // a fraction for an integer
            r#"{"chrom":"1","pos":01}"#,         // a leading zero
            r#"{"chrom":"1","pos":1,"pos":2}"#,  // a duplicate member
            r#"{"chrom":"1"}"#,                  // a missing non-nullable column
            r#"{"chrom":null,"pos":1}"#,         // a null one
            r#"{"chrom":"\ud800","pos":1}"#,     // a lone surrogate
            "{\"chrom\":\"a\u{1}b\",\"pos\":1}", // a raw control character
            r#"{"ch\u0072om":"1","pos":1}"#,     // a key with an escape
            r#"{"chrom":"1","pos":1} {}"#,       // two objects
            r#"{"chrom":"1","pos":1,"x":[1,}"#,  // bad JSON in a skipped member
            r#"{"chrom":"1","pos":1,"x":{"a":1,}}"#,
            r#"{"chrom":"1","pos":1,"x":{"a" 1}}"#,
            r#"{"chrom":"1","pos":1,"x":{1:2}}"#,
            r#"{"chrom":"1","pos":1,"x":[1 2]}"#,
            r#"{"chrom":"1","pos":1,"x":{"a":1]}"#,
            r#"{"chrom":"1","pos":1,"x":[1}}"#,
            r#"{"chrom":"1","pos":1,"x":[{"a":[}]]}"#,
            r#"{"chrom":"1","pos":1,"x":tru}"#,
            r#"{"chrom":"1","pos":1,"x":-}"#,
            r#"{"chrom":"1","pos":1,"x":"abc}"#,
            r#"{"chrom":"1","pos":1,"x":[[]"#,
            r#"{"chrom":"1","pos":1,"qual":1e999}"#, // out of range
            r#"{"chrom":"1","pos":1,"info":{"DP":3000000000,"DB":true}}"#, // Int32 overflow
            r#"{"chrom":"1","pos":1,"info":{"DP":1}}"#, // the non-nullable flag missing
            r#"[1]"#,
            r#"null"#,
            "",
        ] {
            assert!(fast(&schema, &[ok, bad]).is_none(), "{bad}");
        }
        // nesting within the bound is skipped as arrow_json skips it; deeper is left to it
        let within = format!(
            r#"{{"chrom":"1","pos":1,"x":{}1{}}}"#,
            r#"[{"a":"#.repeat(30),
            "}]".repeat(30)
        );
        assert_eq!(
            fast(&schema, &[&within]).expect("within the bound"),
            reference(&schema, &[&within]).unwrap()
        );
        // deep nesting in a skipped member is left to arrow_json too
        let deep = format!(
            r#"{{"chrom":"1","pos":1,"x":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(fast(&schema, &[&deep]).is_none());
        // bytes that are not UTF-8, in a string read and in a member skipped
        for bad in [
            &b"{\"chrom\":\"\xff\",\"pos\":1}"[..],
            &b"{\"chrom\":\"1\",\"pos\":1,\"x\":\"\xc3\"}"[..],
            // overlong forms, an encoded surrogate, above U+10FFFF, a lone continuation byte,
            // a sequence cut short by the quote or by the end of the message
            &b"{\"chrom\":\"\xc0\xaf\",\"pos\":1}"[..],
            &b"{\"chrom\":\"\xe0\x80\xaf\",\"pos\":1}"[..],
            &b"{\"chrom\":\"1\",\"pos\":1,\"x\":\"\xed\xa0\x80\"}"[..],
            &b"{\"chrom\":\"\xf4\x90\x80\x80\",\"pos\":1}"[..],
            &b"{\"chrom\":\"ab\x80\",\"pos\":1}"[..],
            &b"{\"chrom\":\"\xe2\x82\",\"pos\":1}"[..],
            &b"{\"chrom\":\"1\",\"pos\":1,\"x\":\"\xf0\x9f\xa7"[..],
            // and such bytes outside strings
            &b"{\"chrom\":\"1\",\"pos\":1}\xc3\xa9"[..],
            &b"{\"chrom\":\"1\",\"pos\":1,\"x\":1\xc3\xa9}"[..],
            &b"{\"chrom\":\"1\",\"p\xc3\xa9\":1}"[..],
        ] {
            let mut decoder = JsonDecoder::new(Arc::clone(&schema)).unwrap();
            assert!(decoder.decode([ok.as_bytes(), bad].into_iter()).is_none());
        }
        // a type it does not build
        let other = Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)]));
        assert!(JsonDecoder::new(other).is_none());
    }

    #[test]
    fn a_projection_skips_the_other_members() {
        let schema = Arc::new(schema().project(&[1]).unwrap());
        let messages = [
            r#"{"chrom":"1","pos":5,"info":{"S":"\u00e9","AF":[1,2]}}"#,
            r#"{"pos":6}"#,
        ];
        let got = fast(&schema, &messages).unwrap();
        assert_eq!(
            got.column(0).as_ref(),
            reference(&schema, &messages).unwrap().column(0).as_ref()
        );
        // no columns at all: rows are still counted, and still checked to be JSON objects
        let none = Arc::new(Schema::empty());
        assert_eq!(fast(&none, &messages).unwrap().num_rows(), 2);
        assert!(fast(&none, &[r#"{"a":tru}"#]).is_none());
        assert_eq!(fast(&none, &[]).unwrap().num_rows(), 0);
        assert!(got.column(0).null_count() == 0);
    }
}
