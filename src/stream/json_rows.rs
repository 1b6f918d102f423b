//! Rows written as JSON objects, one per message, byte for byte as `arrow_json`'s
//! line-delimited writer writes them (the same row always gives the same message, and so the
//! same id, whichever writer made it).
//!
//! `arrow_json` escapes every member name again for every row and dispatches each value through
//! a boxed encoder; writing a topic spent a third of its time there. [`write_rows`] prepares
//! each column once per batch (its `"name":` bytes, its typed array) and then writes the rows
//! into one buffer (strings scanned eight bytes at a time for bytes to escape, with the
//! reader's test from [`super::json`]). It covers the types topic tables have (strings, integers, floats, booleans,
//! lists and structs of those); any other type declines the batch (`false`), which the caller
//! then writes with `arrow_json`.
//!
//! `arrow_json`'s rules kept here: members that are null are left out (in nested structs too),
//! null list items are `null`, NaN and ±infinity are `null`, numbers are written by
//! `lexical_core` (its shortest forms), strings are escaped as `serde_json` escapes them.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, GenericListArray, GenericStringArray, OffsetSizeTrait,
    PrimitiveArray, RecordBatch, StringViewArray, StructArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Fields, Float32Type, Float64Type, Int32Type, Int64Type,
};

use super::json::{STRING_STOP, string_stops};

/// Writes each row of `batch` as a JSON object to `out`, pushing where each one ends to `ends`;
/// `false` (and `out`, `ends` as they were) when a column has a type this writer does not
/// cover.
pub fn write_rows(batch: &RecordBatch, out: &mut Vec<u8>, ends: &mut Vec<usize>) -> bool {
    let Some(root) = Members::new(batch.schema().fields(), batch.columns()) else {
        return false;
    };
    let mut lexical = Lexical::default();
    out.reserve(batch.num_rows() * 160);
    ends.reserve(batch.num_rows());
    for row in 0..batch.num_rows() {
        root.write(row, out, &mut lexical);
        ends.push(out.len());
    }
    true
}

/// Scratch space for numbers.
struct Lexical {
    buf: [u8; lexical_core::BUFFER_SIZE],
}

impl Default for Lexical {
    fn default() -> Self {
        Lexical {
            buf: [0; lexical_core::BUFFER_SIZE],
        }
    }
}

/// One column (or list item, or struct member) ready to write.
enum Value {
    Utf8(GenericStringArray<i32>),
    LargeUtf8(GenericStringArray<i64>),
    Utf8View(StringViewArray),
    Int32(PrimitiveArray<Int32Type>),
    Int64(PrimitiveArray<Int64Type>),
    Float32(PrimitiveArray<Float32Type>),
    Float64(PrimitiveArray<Float64Type>),
    Boolean(BooleanArray),
    List(Box<List<i32>>),
    LargeList(Box<List<i64>>),
    Struct(Members),
}

/// A list column: its offsets and its items.
struct List<O: OffsetSizeTrait> {
    array: GenericListArray<O>,
    item: Item,
}

/// List items: their values and nulls.
struct Item {
    nulls: Option<NullBuffer>,
    value: Value,
}

/// The members of an object (a row, or a struct value).
struct Members {
    members: Vec<Member>,
}

struct Member {
    /// `"name":`, escaped once.
    name: Vec<u8>,
    nulls: Option<NullBuffer>,
    value: Value,
}

impl Value {
    /// `None` for a type this writer does not cover.
    fn new(array: &ArrayRef) -> Option<Value> {
        Some(match array.data_type() {
            DataType::Utf8 => Value::Utf8(array.as_string::<i32>().clone()),
            DataType::LargeUtf8 => Value::LargeUtf8(array.as_string::<i64>().clone()),
            DataType::Utf8View => Value::Utf8View(array.as_string_view().clone()),
            DataType::Int32 => Value::Int32(array.as_primitive::<Int32Type>().clone()),
            DataType::Int64 => Value::Int64(array.as_primitive::<Int64Type>().clone()),
            // the same digits as Int64 (UInt64 may not fit)
            DataType::Int8
            | DataType::Int16
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => {
                let wide = cast(array, &DataType::Int64).ok()?;
                Value::Int64(wide.as_primitive::<Int64Type>().clone())
            }
            DataType::Float32 => Value::Float32(array.as_primitive::<Float32Type>().clone()),
            DataType::Float64 => Value::Float64(array.as_primitive::<Float64Type>().clone()),
            DataType::Boolean => Value::Boolean(array.as_boolean().clone()),
            DataType::List(_) => {
                let array = array.as_list::<i32>().clone();
                let item = Item::new(array.values())?;
                Value::List(Box::new(List { array, item }))
            }
            DataType::LargeList(_) => {
                let array = array.as_list::<i64>().clone();
                let item = Item::new(array.values())?;
                Value::LargeList(Box::new(List { array, item }))
            }
            DataType::Struct(fields) => {
                let array: &StructArray = array.as_struct();
                Value::Struct(Members::new(fields, array.columns())?)
            }
            _ => return None,
        })
    }

    /// The value at `i` (not null).
    fn write(&self, i: usize, out: &mut Vec<u8>, lexical: &mut Lexical) {
        match self {
            Value::Utf8(a) => write_str(a.value(i), out),
            Value::LargeUtf8(a) => write_str(a.value(i), out),
            Value::Utf8View(a) => write_str(a.value(i), out),
            Value::Int32(a) => {
                out.extend_from_slice(itoa::Buffer::new().format(a.value(i)).as_bytes())
            }
            Value::Int64(a) => {
                out.extend_from_slice(itoa::Buffer::new().format(a.value(i)).as_bytes())
            }
            Value::Float32(a) => write_float(a.value(i), out, lexical),
            Value::Float64(a) => write_float(a.value(i), out, lexical),
            Value::Boolean(a) => out.extend_from_slice(if a.value(i) { b"true" } else { b"false" }),
            Value::List(list) => list.write(i, out, lexical),
            Value::LargeList(list) => list.write(i, out, lexical),
            Value::Struct(members) => members.write(i, out, lexical),
        }
    }
}

impl Item {
    fn new(values: &ArrayRef) -> Option<Item> {
        Some(Item {
            nulls: values.nulls().filter(|n| n.null_count() > 0).cloned(),
            value: Value::new(values)?,
        })
    }
}

impl<O: OffsetSizeTrait> List<O> {
    fn write(&self, i: usize, out: &mut Vec<u8>, lexical: &mut Lexical) {
        let offsets = self.array.value_offsets();
        let (start, end) = (offsets[i].as_usize(), offsets[i + 1].as_usize());
        out.push(b'[');
        for j in start..end {
            if j != start {
                out.push(b',');
            }
            if self.item.nulls.as_ref().is_some_and(|n| n.is_null(j)) {
                out.extend_from_slice(b"null");
            } else {
                self.item.value.write(j, out, lexical);
            }
        }
        out.push(b']');
    }
}

impl Members {
    fn new(fields: &Fields, columns: &[ArrayRef]) -> Option<Members> {
        let members = fields
            .iter()
            .zip(columns)
            .map(|(field, column)| {
                let mut name = Vec::with_capacity(field.name().len() + 3);
                write_str(field.name(), &mut name);
                name.push(b':');
                Some(Member {
                    name,
                    nulls: column.nulls().filter(|n| n.null_count() > 0).cloned(),
                    value: Value::new(column)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Members { members })
    }

    /// The object at `i`: its members that are not null.
    fn write(&self, i: usize, out: &mut Vec<u8>, lexical: &mut Lexical) {
        out.push(b'{');
        let mut first = true;
        for member in &self.members {
            if member.nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&member.name);
            member.value.write(i, out, lexical);
        }
        out.push(b'}');
    }
}

/// A float as `arrow_json` writes it: `lexical_core`'s shortest form, `null` when not finite.
fn write_float<F>(v: F, out: &mut Vec<u8>, lexical: &mut Lexical)
where
    F: lexical_core::ToLexical + Finite,
{
    if v.finite() {
        out.extend_from_slice(lexical_core::write(v, &mut lexical.buf));
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Whether a float is neither NaN nor infinite.
trait Finite {
    fn finite(self) -> bool;
}

impl Finite for f32 {
    fn finite(self) -> bool {
        self.is_finite()
    }
}

impl Finite for f64 {
    fn finite(self) -> bool {
        self.is_finite()
    }
}

/// `s` as a JSON string, escaped as `serde_json` escapes (short forms for `\b \f \n \r \t`,
/// `\u00xx` with lowercase hex for the other controls; `/` and non-ASCII as they are).
fn write_str(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut plain = 0;
    // eight bytes at a time while none needs escaping
    while let Some(chunk) = bytes[plain..].first_chunk::<8>() {
        if string_stops(u64::from_le_bytes(*chunk)) != 0 {
            break;
        }
        plain += 8;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(plain) {
        if !STRING_STOP[b as usize] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BooleanBuilder, Float32Array, Float64Array, Int8Array, Int32Array, Int64Array,
        LargeStringArray, ListBuilder, StringArray, StringBuilder, StructBuilder, UInt64Array,
    };
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    /// What arrow_json's line-delimited writer makes of `batch`, one string per row.
    fn arrow_json_rows(batch: &RecordBatch) -> Vec<String> {
        let mut buf = Vec::new();
        let mut writer = arrow_json::LineDelimitedWriter::new(&mut buf);
        writer.write(batch).unwrap();
        writer.finish().unwrap();
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn ours(batch: &RecordBatch) -> Option<Vec<String>> {
        let (mut out, mut ends) = (b"before".to_vec(), Vec::new());
        if !write_rows(batch, &mut out, &mut ends) {
            assert_eq!(out, b"before");
            assert!(ends.is_empty());
            return None;
        }
        let mut start = "before".len();
        Some(
            ends.iter()
                .map(|&end| {
                    let row = String::from_utf8(out[start..end].to_vec()).unwrap();
                    start = end;
                    row
                })
                .collect(),
        )
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let texts: Vec<String> = (0u8..=0x7f)
            .map(|b| format!("a{}b", b as char))
            .chain(
                [
                    "",
                    "plain text longer than eight bytes",
                    "ends with a quote after eight\"",
                    "ünïcödé ✓ 𝄞 and \u{7f}",
                    "\\\\ two backslashes, / a slash",
                    "tab\there\nnewline\r\u{1}\u{1f}",
                ]
                .map(str::to_string),
            )
            .collect();
        let b = batch(vec![(
            "s\"name\n",
            Arc::new(StringArray::from(texts.clone())) as ArrayRef,
        )]);
        assert_eq!(ours(&b).unwrap(), arrow_json_rows(&b));
        let large = batch(vec![(
            "s",
            Arc::new(LargeStringArray::from(texts)) as ArrayRef,
        )]);
        assert_eq!(ours(&large).unwrap(), arrow_json_rows(&large));
    }

    #[test]
    fn numbers_and_booleans_are_written_as_arrow_json_writes_them() {
        let floats = vec![
            Some(0.0),
            Some(-0.0),
            Some(0.1),
            Some(1.0),
            Some(123456.789),
            Some(1e20),
            Some(1e-7),
            Some(f64::MAX),
            Some(f64::MIN_POSITIVE),
            Some(5e-324),
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            None,
        ];
        let n = floats.len();
        let singles: Vec<Option<f32>> = floats.iter().map(|f| f.map(|f| f as f32)).collect();
        let ints: Vec<Option<i64>> = (0..n as i64)
            .map(|i| match i {
                0 => Some(i64::MIN),
                1 => Some(i64::MAX),
                2 => None,
                _ => Some(i * -7919),
            })
            .collect();
        let b = batch(vec![
            ("f64", Arc::new(Float64Array::from(floats)) as ArrayRef),
            ("f32", Arc::new(Float32Array::from(singles))),
            ("i64", Arc::new(Int64Array::from(ints))),
            (
                "i32",
                Arc::new(Int32Array::from_iter(
                    (0..n as i32).map(|i| Some(i32::MIN + i)),
                )),
            ),
            (
                "i8",
                Arc::new(Int8Array::from_iter((0..n as i8).map(|i| Some(-i)))),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from_iter(
                    (0..n).map(|i| (i % 3 != 2).then_some(i % 2 == 0)),
                )),
            ),
        ]);
        assert_eq!(ours(&b).unwrap(), arrow_json_rows(&b));
    }

    #[test]
    fn nulls_lists_and_structs_are_written_as_arrow_json_writes_them() {
        // a VCF-like row: alt list with null items, filter list, info struct with nested lists
        let mut alt = ListBuilder::new(StringBuilder::new());
        let mut info = StructBuilder::new(
            vec![
                Field::new("DP", DataType::Int32, true),
                Field::new(
                    "AF",
                    DataType::List(Arc::new(Field::new_list_field(DataType::Float32, true))),
                    true,
                ),
                Field::new("DB", DataType::Boolean, true),
            ],
            vec![
                Box::new(datafusion::arrow::array::Int32Builder::new()),
                Box::new(ListBuilder::new(
                    datafusion::arrow::array::Float32Builder::new(),
                )),
                Box::new(BooleanBuilder::new()),
            ],
        );
        for i in 0..6 {
            match i {
                0 => alt.append_value([Some("T")]),
                1 => alt.append_value([Some("G"), None, Some("<DEL>")]),
                2 => alt.append_null(),
                _ => alt.append_value(Vec::<Option<&str>>::new()),
            }
            let dp = info
                .field_builder::<datafusion::arrow::array::Int32Builder>(0)
                .unwrap();
            if i == 1 {
                dp.append_null()
            } else {
                dp.append_value(i * 10)
            }
            let af = info
                .field_builder::<ListBuilder<datafusion::arrow::array::Float32Builder>>(1)
                .unwrap();
            match i {
                0 => af.append_value([Some(0.0655f32)]),
                1 => af.append_value([Some(0.5), None, Some(f32::NAN)]),
                2 => af.append_null(),
                _ => af.append_value([]),
            }
            let db = info.field_builder::<BooleanBuilder>(2).unwrap();
            if i % 2 == 0 {
                db.append_value(true)
            } else {
                db.append_null()
            }
            // row 4: the whole struct is null
            info.append(i != 4);
        }
        let b = batch(vec![
            (
                "chrom",
                Arc::new(StringArray::from(vec![Some("chr1"); 6])) as ArrayRef,
            ),
            ("alt", Arc::new(alt.finish())),
            ("info", Arc::new(info.finish())),
        ]);
        let rows = ours(&b).unwrap();
        assert_eq!(rows, arrow_json_rows(&b));
        assert_eq!(
            rows[1],
            r#"{"chrom":"chr1","alt":["G",null,"<DEL>"],"info":{"AF":[0.5,null,null]}}"#
        );
        assert_eq!(rows[4], r#"{"chrom":"chr1","alt":[]}"#);
        // slices (offsets not starting at 0) write their own rows only
        let slice = b.slice(1, 3);
        assert_eq!(ours(&slice).unwrap(), arrow_json_rows(&slice));
    }

    #[test]
    fn a_type_it_does_not_cover_declines_the_batch() {
        let b = batch(vec![
            ("ok", Arc::new(Int32Array::from(vec![1])) as ArrayRef),
            ("big", Arc::new(UInt64Array::from(vec![u64::MAX]))),
        ]);
        assert!(ours(&b).is_none());
        let schema = Schema::new(vec![Field::new("n", DataType::Int32, true)]);
        let empty = RecordBatch::new_empty(Arc::new(schema));
        assert_eq!(ours(&empty).unwrap(), Vec::<String>::new());
    }
}
