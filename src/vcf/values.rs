//! Typed Arrow builders for INFO and FORMAT values.
//!
//! A value that does not fit its declared type (text in an Integer field, an integer beyond
//! 32 bits, one of the integers BCF reserves) becomes NULL and is counted as a warning
//! ([`Warnings`]), as bcftools warns and sets it missing; it never fails the query.

use std::sync::Arc;

use std::collections::HashMap;

use datafusion::arrow::array::NullBufferBuilder;
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, DictionaryArray, Float64Builder, Int32Array,
    Int32Builder, ListBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Int32Type};

pub use super::warnings::Warnings;

/// A builder for one INFO or FORMAT field, typed from the header.
#[derive(Debug)]
pub enum ValueBuilder {
    /// Integer, Number=1.
    Int(Int32Builder),
    /// Float, Number=1.
    Float(Float64Builder),
    /// Flag.
    Flag(BooleanBuilder),
    /// String/Character, Number=1.
    Str(StringBuilder),
    /// Integer list.
    IntList(ListBuilder<Int32Builder>),
    /// Float list.
    FloatList(ListBuilder<Float64Builder>),
    /// String list.
    StrList(ListBuilder<StringBuilder>),
    /// Dictionary-encoded text (GT of the long layout).
    Dict(TextDictionary),
}

/// Builds dictionary-encoded text: each distinct value once per batch, a key per row.
///
/// Values of up to 7 bytes (every diploid call, most polyploid ones) are compared as one
/// integer (their bytes and length packed), so a cohort's calls cost an integer comparison
/// each; longer values are compared as bytes.
#[derive(Debug, Default)]
pub struct TextDictionary {
    keys: Vec<i32>,
    nulls: Option<NullBufferBuilder>,
    /// The distinct values by key: the bytes they are looked up by, and their text (the same
    /// bytes for VCF text; the encoded call for BCF).
    values: Vec<Entry>,
    /// The packed form of each value (`u64::MAX` for values too long to pack).
    packed: Vec<u64>,
    /// Key of the value appended last (calls repeat: `0|0` follows `0|0`).
    last: i32,
    /// Value → key, once there are too many values for a linear search.
    map: Option<HashMap<Box<[u8]>, i32>>,
}

/// A distinct value: the bytes it is looked up by, and its text.
type Entry = (Box<[u8]>, Box<[u8]>);

/// A value of up to 7 bytes as one integer: its bytes, then its length in the top byte.
#[inline(always)]
fn pack(raw: &[u8]) -> u64 {
    if raw.len() > 7 {
        return u64::MAX;
    }
    let mut v = (raw.len() as u64) << 56;
    for (i, b) in raw.iter().enumerate() {
        v |= u64::from(*b) << (8 * i);
    }
    v
}

impl TextDictionary {
    const LINEAR_MAX: usize = 32;

    #[inline(always)]
    fn key_of(&mut self, raw: &[u8], text: impl FnOnce() -> Vec<u8>) -> i32 {
        let packed = pack(raw);
        if packed != u64::MAX {
            if self.packed.get(self.last as usize) == Some(&packed) {
                return self.last;
            }
            if self.map.is_none()
                && let Some(k) = self.packed.iter().position(|p| *p == packed)
            {
                self.last = k as i32;
                return self.last;
            }
        }
        self.key_of_slow(raw, packed, text)
    }

    fn key_of_slow(&mut self, raw: &[u8], packed: u64, text: impl FnOnce() -> Vec<u8>) -> i32 {
        let found = match &self.map {
            Some(map) => map.get(raw).map(|k| *k as usize),
            None if packed != u64::MAX => None,
            None => self.values.iter().position(|(v, _)| **v == *raw),
        };
        let key = found.unwrap_or_else(|| self.insert(raw, packed, text()));
        self.last = key as i32;
        self.last
    }

    #[cold]
    fn insert(&mut self, raw: &[u8], packed: u64, text: Vec<u8>) -> usize {
        let key = self.values.len();
        self.values.push((raw.into(), text.into()));
        self.packed.push(packed);
        if let Some(map) = &mut self.map {
            map.insert(raw.into(), key as i32);
        } else if self.values.len() > Self::LINEAR_MAX {
            self.map = Some(
                self.values
                    .iter()
                    .enumerate()
                    .map(|(k, (v, _))| (v.clone(), k as i32))
                    .collect(),
            );
        }
        key
    }

    #[inline(always)]
    fn push_key(&mut self, key: i32) {
        self.keys.push(key);
        if let Some(n) = &mut self.nulls {
            n.append_non_null();
        }
    }

    /// Appends a value given as text.
    #[inline(always)]
    pub fn append(&mut self, raw: &[u8]) {
        let key = self.key_of(raw, || raw.to_vec());
        self.push_key(key);
    }

    /// Appends a value looked up by `raw` (an encoded form), whose text `text` makes when the
    /// value is new to the batch.
    pub fn append_with(&mut self, raw: &[u8], text: impl FnOnce() -> Vec<u8>) {
        let key = self.key_of(raw, text);
        self.push_key(key);
    }

    /// Appends a NULL.
    pub fn append_null(&mut self) {
        let n = self.keys.len();
        let nulls = self.nulls.get_or_insert_with(|| {
            let mut b = NullBufferBuilder::new(n + 1);
            b.append_n_non_nulls(n);
            b
        });
        nulls.append_null();
        self.keys.push(0);
    }

    /// The batch's array; the dictionary starts anew.
    pub fn finish(&mut self) -> ArrayRef {
        let values = StringArray::from_iter_values(
            self.values.iter().map(|(_, t)| String::from_utf8_lossy(t)),
        );
        self.values.clear();
        self.packed.clear();
        self.map = None;
        self.last = 0;
        let nulls = self.nulls.take().and_then(|mut n| n.finish());
        let size = self.keys.len();
        let keys = Int32Array::new(
            std::mem::replace(&mut self.keys, Vec::with_capacity(size)).into(),
            nulls,
        );
        // keys are indices of `values` (0 under a NULL), so this cannot fail
        match DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)) {
            Ok(d) => Arc::new(d),
            Err(_) => Arc::new(StringArray::new_null(0)),
        }
    }

    /// Rows appended since the last finish.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing was appended since the last finish.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Drops the rows appended after the first `len` (a record that failed half-way).
    pub fn truncate(&mut self, len: usize) {
        if self.keys.len() <= len {
            return;
        }
        self.keys.truncate(len);
        if let Some(n) = self.nulls.take() {
            // rebuild the validity of the rows kept
            let kept = n.as_slice().map(|bits| {
                let mut b = NullBufferBuilder::new(len);
                for i in 0..len {
                    b.append(bits[i / 8] & (1 << (i % 8)) != 0);
                }
                b
            });
            self.nulls = kept.or_else(|| {
                let mut b = NullBufferBuilder::new(len);
                b.append_n_non_nulls(len);
                Some(b)
            });
        }
    }
}

impl ValueBuilder {
    /// A builder producing `data_type` (one of the types `schema::value_data_type` returns).
    pub fn new(data_type: &DataType) -> Self {
        match data_type {
            DataType::Int32 => ValueBuilder::Int(Int32Builder::new()),
            DataType::Float64 => ValueBuilder::Float(Float64Builder::new()),
            DataType::Boolean => ValueBuilder::Flag(BooleanBuilder::new()),
            DataType::Dictionary(_, _) => ValueBuilder::Dict(TextDictionary::default()),
            DataType::List(f) => match f.data_type() {
                DataType::Int32 => ValueBuilder::IntList(ListBuilder::new(Int32Builder::new())),
                DataType::Float64 => {
                    ValueBuilder::FloatList(ListBuilder::new(Float64Builder::new()))
                }
                _ => ValueBuilder::StrList(ListBuilder::new(StringBuilder::new())),
            },
            _ => ValueBuilder::Str(StringBuilder::new()),
        }
    }

    /// Appends one value: `None` when the key is absent, `Some(raw)` with the text after `=`
    /// (empty for a key written without a value). `field` names the field in warnings.
    pub fn append(&mut self, raw: Option<&[u8]>, field: &str, warnings: &mut Warnings) {
        self.append_with(raw, field, warnings, parse_int);
    }

    /// As [`ValueBuilder::append`], for an INFO value: an Integer written with a fraction or
    /// other trailing text is read as its leading integer, as htslib reads INFO (a warning
    /// counts them); FORMAT integers stay strict, as htslib refuses them.
    pub fn append_info(&mut self, raw: Option<&[u8]>, field: &str, warnings: &mut Warnings) {
        self.append_with(raw, field, warnings, parse_info_int);
    }

    fn append_with(
        &mut self,
        raw: Option<&[u8]>,
        field: &str,
        warnings: &mut Warnings,
        parse_int: fn(&[u8], &str, &mut Warnings) -> Option<i32>,
    ) {
        let raw = match (raw, &mut *self) {
            (raw, ValueBuilder::Flag(b)) => {
                b.append_value(raw.is_some());
                return;
            }
            (Some(raw), ValueBuilder::Dict(b)) if raw != b"." && !raw.is_empty() => {
                b.append(raw);
                return;
            }
            (None | Some(b".") | Some(b""), b) => {
                b.append_null();
                return;
            }
            (Some(raw), _) => raw,
        };
        match self {
            ValueBuilder::Int(b) => b.append_option(parse_int(raw, field, warnings)),
            ValueBuilder::Float(b) => b.append_option(parse_float(raw, field, warnings)),
            ValueBuilder::Str(b) => b.append_value(String::from_utf8_lossy(raw)),
            ValueBuilder::IntList(b) => {
                for item in raw.split(|&c| c == b',') {
                    b.values().append_option(parse_int(item, field, warnings));
                }
                b.append(true);
            }
            ValueBuilder::FloatList(b) => {
                for item in raw.split(|&c| c == b',') {
                    b.values().append_option(parse_float(item, field, warnings));
                }
                b.append(true);
            }
            ValueBuilder::StrList(b) => {
                for item in raw.split(|&c| c == b',') {
                    if item == b"." {
                        b.values().append_null();
                    } else {
                        b.values().append_value(String::from_utf8_lossy(item));
                    }
                }
                b.append(true);
            }
            ValueBuilder::Flag(_) | ValueBuilder::Dict(_) => {}
        }
    }

    /// Appends a NULL (a false for flags).
    pub fn append_null(&mut self) {
        match self {
            ValueBuilder::Int(b) => b.append_null(),
            ValueBuilder::Float(b) => b.append_null(),
            ValueBuilder::Flag(b) => b.append_value(false),
            ValueBuilder::Str(b) => b.append_null(),
            ValueBuilder::IntList(b) => b.append_null(),
            ValueBuilder::FloatList(b) => b.append_null(),
            ValueBuilder::StrList(b) => b.append_null(),
            ValueBuilder::Dict(b) => b.append_null(),
        }
    }

    /// The finished array; the builder is reset for the next batch.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ValueBuilder::Int(b) => Arc::new(b.finish()),
            ValueBuilder::Float(b) => Arc::new(b.finish()),
            ValueBuilder::Flag(b) => Arc::new(b.finish()),
            ValueBuilder::Str(b) => Arc::new(b.finish()),
            ValueBuilder::IntList(b) => Arc::new(b.finish()),
            ValueBuilder::FloatList(b) => Arc::new(b.finish()),
            ValueBuilder::StrList(b) => Arc::new(b.finish()),
            ValueBuilder::Dict(b) => b.finish(),
        }
    }

    /// Rows appended since the last finish.
    pub fn len(&self) -> usize {
        match self {
            ValueBuilder::Int(b) => b.len(),
            ValueBuilder::Float(b) => b.len(),
            ValueBuilder::Flag(b) => b.len(),
            ValueBuilder::Str(b) => b.len(),
            ValueBuilder::IntList(b) => b.len(),
            ValueBuilder::FloatList(b) => b.len(),
            ValueBuilder::StrList(b) => b.len(),
            ValueBuilder::Dict(b) => b.len(),
        }
    }

    /// True when nothing was appended since the last finish.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The smallest integer a VCF/BCF Integer can hold: BCF reserves -2^31 (missing), -2^31 + 1
/// (end of vector) and the six values after them, and htslib reads all eight as missing.
pub const MIN_INT: i32 = i32::MIN + 8;

/// Parses a VCF Integer; `.` is NULL. A value that is not a 32-bit integer, or one of the
/// values BCF reserves (below [`MIN_INT`]), is NULL with a warning.
pub fn parse_int(s: &[u8], field: &str, warnings: &mut Warnings) -> Option<i32> {
    if s == b"." || s.is_empty() {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    let ok = !digits.is_empty()
        && digits.len() <= 11
        && digits.iter().all(|&b| {
            v = v * 10 + i64::from(b.wrapping_sub(b'0'));
            b.is_ascii_digit()
        });
    let v = if neg { -v } else { v };
    let example = || Some(String::from_utf8_lossy(s).into_owned());
    match i32::try_from(v) {
        Ok(v) if ok && v >= MIN_INT => Some(v),
        Ok(_) if ok => {
            warnings.add(
                "",
                field.as_bytes(),
                "a value BCF reserves (-2147483648 to -2147483641), read as missing",
                example,
            );
            None
        }
        _ => {
            warnings.add(
                "",
                field.as_bytes(),
                "not a 32-bit Integer, read as NULL",
                example,
            );
            None
        }
    }
}

/// Parses an INFO Integer as htslib does: the leading integer of the text (`23.26` is 23,
/// `7x` is 7, with a warning); text without one is NULL with a warning, as in [`parse_int`].
pub fn parse_info_int(s: &[u8], field: &str, warnings: &mut Warnings) -> Option<i32> {
    let sign = usize::from(matches!(s.first(), Some(b'-' | b'+')));
    let digits = s[sign..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || sign + digits == s.len() {
        return parse_int(s, field, warnings);
    }
    let value = parse_int(&s[..sign + digits], field, warnings)?;
    warnings.add(
        "",
        field.as_bytes(),
        "not an Integer, read as its leading integer (as bcftools reads INFO)",
        || Some(String::from_utf8_lossy(s).into_owned()),
    );
    Some(value)
}

/// Parses a VCF Float (`nan`, `inf` included); `.` is NULL, anything unparsable NULL with a warning.
pub fn parse_float(s: &[u8], field: &str, warnings: &mut Warnings) -> Option<f64> {
    if s == b"." || s.is_empty() {
        return None;
    }
    match std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
    {
        Some(v) => Some(v),
        None => {
            warnings.add("", field.as_bytes(), "not a Float, read as NULL", || {
                Some(String::from_utf8_lossy(s).into_owned())
            });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Field, Int32Type};

    #[test]
    fn integers_and_overflow() {
        let mut w = Warnings::default();
        assert_eq!(parse_int(b"-129", "DP", &mut w), Some(-129));
        assert_eq!(parse_int(b"2147483647", "DP", &mut w), Some(i32::MAX));
        assert_eq!(parse_int(b".", "DP", &mut w), None);
        assert!(w.is_empty());
        assert_eq!(parse_int(b"2147483648", "DP", &mut w), None);
        assert_eq!(parse_int(b"1e3", "DP", &mut w), None);
        assert_eq!(
            w.kinds(),
            vec![("DP: not a 32-bit Integer, read as NULL".to_string(), 2)]
        );
    }

    #[test]
    fn info_integers_are_read_as_htslib_reads_them() {
        let mut w = Warnings::default();
        for (text, want) in [
            ("23.259407", Some(23)),
            ("-1.16", Some(-1)),
            ("-0.7", Some(0)),
            ("2e3", Some(2)),
            ("7x", Some(7)),
            ("12", Some(12)),
            ("abc", None),
            ("99999999999", None),
        ] {
            assert_eq!(parse_info_int(text.as_bytes(), "X", &mut w), want, "{text}");
        }
        assert_eq!(
            w.kinds(),
            vec![
                (
                    "X: not an Integer, read as its leading integer (as bcftools reads INFO)"
                        .to_string(),
                    5
                ),
                ("X: not a 32-bit Integer, read as NULL".to_string(), 2)
            ]
        );
    }

    #[test]
    fn reserved_bcf_integers_read_as_missing() {
        let mut w = Warnings::default();
        for v in -2147483648i64..=-2147483641 {
            assert_eq!(
                parse_int(v.to_string().as_bytes(), "DP", &mut w),
                None,
                "{v}"
            );
        }
        assert_eq!(parse_int(b"-2147483640", "DP", &mut w), Some(-2147483640));
        assert_eq!(w.kinds().len(), 1);
        assert_eq!(w.kinds()[0].1, 8);
    }

    #[test]
    fn lists_with_missing_elements() {
        let mut w = Warnings::default();
        let ty = DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)));
        let mut b = ValueBuilder::new(&ty);
        b.append(Some(b"1,.,3"), "AC", &mut w);
        b.append(Some(b"."), "AC", &mut w);
        b.append(None, "AC", &mut w);
        let a = b.finish();
        let l = a.as_list::<i32>();
        assert_eq!(l.len(), 3);
        let first = l.value(0);
        let first = first.as_primitive::<Int32Type>();
        assert_eq!(
            first.iter().collect::<Vec<_>>(),
            vec![Some(1), None, Some(3)]
        );
        assert!(l.is_null(1) && l.is_null(2));
    }

    #[test]
    fn dictionary_text_keeps_each_value_once_per_batch() {
        let mut w = Warnings::default();
        let mut b = ValueBuilder::new(&DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::Utf8),
        ));
        for raw in [
            Some(&b"0|0"[..]),
            Some(b"0|1"),
            Some(b"0|0"),
            Some(b"."),
            None,
            Some(b"0|1"),
        ] {
            b.append(raw, "GT", &mut w);
        }
        let a = b.finish();
        let d = a.as_dictionary::<Int32Type>();
        assert_eq!(d.values().len(), 2);
        assert_eq!(
            d.keys().iter().collect::<Vec<_>>(),
            vec![Some(0), Some(1), Some(0), None, None, Some(1)]
        );
        // more values than a linear search serves
        for i in 0..100 {
            b.append(
                Some(format!("{}/{}", i % 50, i % 7).as_bytes()),
                "GT",
                &mut w,
            );
        }
        let a = b.finish();
        let d = a.as_dictionary::<Int32Type>();
        assert_eq!(d.values().len(), 100);
        let values = d.values().as_string::<i32>();
        assert_eq!(values.value(d.keys().value(57) as usize), "7/1");
    }

    #[test]
    fn a_record_that_fails_half_way_leaves_no_keys() {
        let mut d = TextDictionary::default();
        d.append(b"0|0");
        d.append_null();
        d.append(b"0|1");
        d.append(b"1|1");
        d.truncate(2);
        d.append(b"1|0");
        let a = d.finish();
        let dict = a.as_dictionary::<Int32Type>();
        let values = dict.values().as_string::<i32>();
        let texts: Vec<Option<&str>> = dict
            .keys()
            .iter()
            .map(|k| k.map(|k| values.value(k as usize)))
            .collect();
        assert_eq!(texts, vec![Some("0|0"), None, Some("1|0")]);
    }

    #[test]
    fn flags_are_false_when_absent() {
        let mut w = Warnings::default();
        let mut b = ValueBuilder::new(&DataType::Boolean);
        b.append(Some(b""), "DB", &mut w);
        b.append(None, "DB", &mut w);
        let a = b.finish();
        assert_eq!(
            a.as_boolean().iter().collect::<Vec<_>>(),
            vec![Some(true), Some(false)]
        );
    }
}
