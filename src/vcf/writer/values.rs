//! Values as VCF text: the few Arrow forms a written value takes ([`Values`]), percent-encoding
//! by place in the record, and numbers with the fewest digits that read back the same.
//!
//! Text is carried byte for byte, the way it was read: vcfq, like bcftools, does not decode
//! percent-encoding when reading, so it does not encode `%` when writing. Only the characters
//! that would break a record apart are percent-encoded: tab, CR and LF anywhere, `;` in an INFO
//! value, `:` in a FORMAT value, `,` in an element of a list (and `;` in a FILTER name).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, Int64Array, ListArray,
    StringArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;

/// Values of one column or field, in the few forms the writer formats.
#[derive(Debug)]
pub(super) enum Values {
    Int(Int64Array),
    F32(Float32Array),
    F64(Float64Array),
    Flag(BooleanArray),
    Str(StringArray),
    List {
        offsets: OffsetBuffer<i32>,
        nulls: Option<NullBuffer>,
        values: Box<Values>,
    },
}

/// Casts that fail on a value that does not fit, rather than turning it into NULL.
pub(super) const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: datafusion::arrow::util::display::FormatOptions::new(),
};

impl Values {
    pub(super) fn new(array: &ArrayRef) -> Result<Self, ArrowError> {
        use DataType::*;
        Ok(match array.data_type() {
            Int64 => Values::Int(array.as_primitive().clone()),
            Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32 | UInt64 => Values::Int(
                cast_with_options(array, &Int64, &STRICT)?
                    .as_primitive()
                    .clone(),
            ),
            Float32 => Values::F32(array.as_primitive().clone()),
            Float64 => Values::F64(array.as_primitive().clone()),
            Float16 | Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => {
                Values::F64(
                    cast_with_options(array, &Float64, &STRICT)?
                        .as_primitive()
                        .clone(),
                )
            }
            Boolean => Values::Flag(array.as_boolean().clone()),
            Utf8 => Values::Str(array.as_string::<i32>().clone()),
            Dictionary(_, value) if !matches!(value.as_ref(), Utf8 | LargeUtf8 | Utf8View) => {
                Self::new(&cast_with_options(array, value, &STRICT)?)?
            }
            LargeUtf8 | Utf8View | Dictionary(..) => Values::Str(
                cast_with_options(array, &Utf8, &STRICT)?
                    .as_string::<i32>()
                    .clone(),
            ),
            List(_) => Self::list(array.as_list::<i32>())?,
            LargeList(f) | FixedSizeList(f, _) | ListView(f) => {
                let as_list = cast_with_options(array, &List(Arc::clone(f)), &STRICT)?;
                Self::list(as_list.as_list::<i32>())?
            }
            other => {
                return Err(ArrowError::CastError(format!(
                    "a VCF cannot hold values of type {other}"
                )));
            }
        })
    }

    pub(super) fn list(list: &ListArray) -> Result<Self, ArrowError> {
        Ok(Values::List {
            offsets: list.offsets().clone(),
            nulls: list.nulls().cloned(),
            values: Box::new(Values::new(list.values())?),
        })
    }

    pub(super) fn is_null(&self, i: usize) -> bool {
        match self {
            Values::Int(a) => a.is_null(i),
            Values::F32(a) => a.is_null(i),
            Values::F64(a) => a.is_null(i),
            Values::Flag(a) => a.is_null(i),
            Values::Str(a) => a.is_null(i),
            Values::List { nulls, .. } => nulls.as_ref().is_some_and(|n| n.is_null(i)),
        }
    }

    /// Whether value `i` is written at all: not NULL, not an empty list, not a false flag.
    pub(super) fn is_present(&self, i: usize) -> bool {
        match self {
            Values::Flag(a) => a.is_valid(i) && a.value(i),
            Values::List { offsets, .. } if !self.is_null(i) => offsets[i + 1] > offsets[i],
            _ => !self.is_null(i),
        }
    }

    /// Writes value `i` (`.` when NULL), a list's elements separated by commas, encoding the
    /// bytes that `place` reserves.
    pub(super) fn write(&self, i: usize, out: &mut Vec<u8>, place: &Place) {
        if self.is_null(i) {
            out.push(b'.');
            return;
        }
        match self {
            Values::Int(a) => {
                out.extend_from_slice(itoa::Buffer::new().format(a.value(i)).as_bytes())
            }
            Values::F32(a) => push_f32(out, a.value(i)),
            Values::F64(a) => push_f64(out, a.value(i)),
            Values::Flag(a) => out.push(if a.value(i) { b'1' } else { b'0' }),
            Values::Str(a) => push_escaped(out, a.value(i).as_bytes(), place.value),
            Values::List {
                offsets, values, ..
            } => {
                let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
                if start == end {
                    out.push(b'.');
                }
                let element = Place {
                    value: place.element,
                    element: place.element,
                };
                for j in start..end {
                    if j > start {
                        out.push(b',');
                    }
                    values.write(j, out, &element);
                }
            }
        }
    }

    /// The number of elements of a list value, or for text, its comma-separated parts
    /// (`.` and NULL count as none).
    pub(super) fn count(&self, i: usize) -> usize {
        match self {
            _ if self.is_null(i) => 0,
            Values::List { offsets, .. } => (offsets[i + 1] - offsets[i]) as usize,
            Values::Str(a) => match a.value(i) {
                "." | "" => 0,
                s => s.bytes().filter(|&b| b == b',').count() + 1,
            },
            _ => 1,
        }
    }
}

/// Bytes that are percent-encoded in one place of a record.
#[derive(Clone)]
pub(super) struct Reserved([bool; 256]);

impl Reserved {
    const fn new(extra: &[u8]) -> Self {
        let mut set = [false; 256];
        set[b'\t' as usize] = true;
        set[b'\n' as usize] = true;
        set[b'\r' as usize] = true;
        let mut i = 0;
        while i < extra.len() {
            set[extra[i] as usize] = true;
            i += 1;
        }
        Reserved(set)
    }
}

/// Where in a record a value goes: what its text and a list element's text must encode.
pub(super) struct Place {
    pub(super) value: &'static Reserved,
    pub(super) element: &'static Reserved,
}

static NOTHING: Reserved = Reserved::new(&[]);
static COMMA: Reserved = Reserved::new(b",");
static SEMICOLON: Reserved = Reserved::new(b";");
static INFO_ELEMENT: Reserved = Reserved::new(b";,");
static COLON: Reserved = Reserved::new(b":");
static FORMAT_ELEMENT: Reserved = Reserved::new(b":,");

/// CHROM, POS, ID, REF, QUAL.
pub(super) const PLAIN: Place = Place {
    value: &NOTHING,
    element: &COMMA,
};
/// An ALT allele.
pub(super) const ALLELE: Place = Place {
    value: &COMMA,
    element: &COMMA,
};
/// A FILTER name.
pub(super) const FILTER: Place = Place {
    value: &SEMICOLON,
    element: &SEMICOLON,
};
/// An INFO value.
pub(super) const INFO: Place = Place {
    value: &SEMICOLON,
    element: &INFO_ELEMENT,
};
/// A FORMAT value.
pub(super) const FORMAT: Place = Place {
    value: &COLON,
    element: &FORMAT_ELEMENT,
};

pub(super) fn push_escaped(out: &mut Vec<u8>, bytes: &[u8], reserved: &Reserved) {
    if !bytes.iter().any(|&b| reserved.0[b as usize]) {
        out.extend_from_slice(bytes);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if reserved.0[b as usize] {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.push(b);
        }
    }
}

/// The fewest digits that read back as `v`; `NaN`, `Inf`, `-Inf` as VCF 4.3 spells them.
pub fn push_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"Inf" } else { b"-Inf" });
    } else {
        let mut buffer = ryu::Buffer::new();
        let s = buffer.format_finite(v);
        out.extend_from_slice(s.strip_suffix(".0").unwrap_or(s).as_bytes());
    }
}

/// As [`push_f64`], for a 32-bit float (its own shortest form: `0.1f32` is `0.1`).
pub fn push_f32(out: &mut Vec<u8>, v: f32) {
    if v.is_nan() || v.is_infinite() {
        push_f64(out, v as f64);
    } else {
        let mut buffer = ryu::Buffer::new();
        let s = buffer.format_finite(v);
        out.extend_from_slice(s.strip_suffix(".0").unwrap_or(s).as_bytes());
    }
}

pub(super) fn write_or_dot(out: &mut Vec<u8>, values: Option<&Values>, row: usize, place: &Place) {
    match values {
        Some(v) => v.write(row, out, place),
        None => out.push(b'.'),
    }
}

/// A list column written with `sep` between its elements (ALT with commas, FILTER with
/// semicolons); text is written as it is.
pub(super) fn write_joined(
    out: &mut Vec<u8>,
    values: Option<&Values>,
    row: usize,
    sep: u8,
    place: &Place,
) {
    match values {
        Some(Values::List {
            offsets,
            nulls,
            values,
        }) => {
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            if nulls.as_ref().is_some_and(|n| n.is_null(row)) || start == end {
                out.push(b'.');
                return;
            }
            for j in start..end {
                if j > start {
                    out.push(sep);
                }
                values.write(j, out, place);
            }
        }
        Some(v) => v.write(row, out, &PLAIN),
        None => out.push(b'.'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_take_the_fewest_digits() {
        let mut out = Vec::new();
        for v in [
            0.1,
            50.0,
            1e-7,
            123456789.0,
            f64::NAN,
            f64::NEG_INFINITY,
            -0.5,
        ] {
            push_f64(&mut out, v);
            out.push(b' ');
        }
        push_f32(&mut out, 0.1f32);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0.1 50 1e-7 123456789 NaN -Inf -0.5 0.1"
        );
    }
}
