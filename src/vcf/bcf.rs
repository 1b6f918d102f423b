//! BCF records in their binary layout (BCF 2.2), read and taken apart without going through
//! VCF text: the shared part (CHROM, POS, rlen, QUAL, ID, alleles, FILTER, INFO) and the
//! per-sample part (one block per FORMAT field, all samples' values in a row).
//!
//! Values are *typed vectors*: a descriptor byte (low 4 bits the type — 0 missing, 1 int8,
//! 2 int16, 3 int32, 5 float, 7 char — high 4 bits the count, 15 meaning that a typed integer
//! with the count follows), then the values, little-endian. Integers reserve their eight
//! smallest values (missing, end of vector, six reserved); floats reserve two NaN patterns.
//! Every length is checked against the record, so a damaged record is an error, never a
//! panic, and a record that parses consumes exactly its declared lengths (which is also how a
//! reader that starts in the middle of a file recognises where records begin).

use std::io::{self, Read};
use std::ops::Range;

/// One record: its shared and per-sample bytes, in one buffer reused from record to record.
#[derive(Debug, Default, Clone)]
pub struct BcfRecord {
    /// The record's bytes, in `buf[..len]` (the buffer only grows, so that it is not zeroed
    /// again for every record).
    buf: Vec<u8>,
    len: usize,
    shared: usize,
}

/// The type of a typed vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No values (type 0).
    Missing,
    /// 8-bit integers.
    Int8,
    /// 16-bit integers.
    Int16,
    /// 32-bit integers.
    Int32,
    /// 32-bit floats.
    Float,
    /// Characters.
    Char,
}

impl Kind {
    #[inline]
    fn of(code: u8) -> Result<Self, String> {
        Ok(match code {
            0 => Kind::Missing,
            1 => Kind::Int8,
            2 => Kind::Int16,
            3 => Kind::Int32,
            5 => Kind::Float,
            7 => Kind::Char,
            other => return Err(format!("unknown BCF value type {other}")),
        })
    }

    /// Bytes per value.
    #[inline]
    pub fn width(self) -> usize {
        match self {
            Kind::Missing => 0,
            Kind::Int8 | Kind::Char => 1,
            Kind::Int16 => 2,
            Kind::Int32 | Kind::Float => 4,
        }
    }
}

/// One value of an integer or float vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An integer.
    Int(i32),
    /// A float.
    Float(f32),
    /// Missing (`.`).
    Missing,
    /// The vector ends before its declared count (padding).
    End,
}

/// A typed vector inside a record: its kind, count and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Typed<'a> {
    /// The values' type.
    pub kind: Kind,
    /// How many values.
    pub count: usize,
    /// The values' bytes (`count` × width).
    pub bytes: &'a [u8],
}

/// A typed vector's place in a record, to keep across borrows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypedAt {
    /// The values' type.
    pub kind: Kind,
    /// How many values.
    pub count: usize,
    /// Offset of the first value byte.
    pub at: usize,
}

impl TypedAt {
    /// The vector inside `buf`.
    pub fn get<'a>(&self, buf: &'a [u8]) -> Typed<'a> {
        let len = self.count * self.kind.width();
        Typed {
            kind: self.kind,
            count: self.count,
            bytes: buf.get(self.at..self.at + len).unwrap_or(&[]),
        }
    }
}

/// The smallest integer of each width that is a value; below it: missing, end of vector and
/// reserved (read as missing, as htslib does).
const INT8_MIN: i32 = i8::MIN as i32 + 8;
const INT16_MIN: i32 = i16::MIN as i32 + 8;
const INT32_MIN: i32 = i32::MIN + 8;
/// Float bit patterns: missing and end of vector.
const FLOAT_MISSING: u32 = 0x7F80_0001;
const FLOAT_END: u32 = 0x7F80_0002;

fn int_value(v: i32, min: i32) -> Value {
    if v >= min {
        Value::Int(v)
    } else if v == min - 7 {
        Value::End
    } else {
        Value::Missing
    }
}

impl<'a> Typed<'a> {
    /// Value `i` (an integer or a float; characters and out-of-range indices are `Missing`).
    #[inline]
    pub fn value(&self, i: usize) -> Value {
        let b = self.bytes;
        match self.kind {
            Kind::Int8 => b
                .get(i)
                .map_or(Value::Missing, |&x| int_value(i32::from(x as i8), INT8_MIN)),
            Kind::Int16 => b.get(2 * i..2 * i + 2).map_or(Value::Missing, |x| {
                int_value(i32::from(i16::from_le_bytes([x[0], x[1]])), INT16_MIN)
            }),
            Kind::Int32 => b.get(4 * i..4 * i + 4).map_or(Value::Missing, |x| {
                int_value(i32::from_le_bytes([x[0], x[1], x[2], x[3]]), INT32_MIN)
            }),
            Kind::Float => b.get(4 * i..4 * i + 4).map_or(Value::Missing, |x| {
                let bits = u32::from_le_bytes([x[0], x[1], x[2], x[3]]);
                match bits {
                    FLOAT_MISSING => Value::Missing,
                    FLOAT_END => Value::End,
                    _ => Value::Float(f32::from_bits(bits)),
                }
            }),
            Kind::Missing | Kind::Char => Value::Missing,
        }
    }

    /// The values up to the end-of-vector mark.
    pub fn values(&self) -> impl Iterator<Item = Value> + '_ {
        (0..self.count)
            .map(|i| self.value(i))
            .take_while(|v| *v != Value::End)
    }

    /// The characters of a char vector, without the NUL padding.
    pub fn chars(&self) -> &'a [u8] {
        if self.kind != Kind::Char {
            return &[];
        }
        let end = self
            .bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.bytes.len());
        &self.bytes[..end]
    }

    /// The first value as an integer (for keys and counts).
    pub fn first_int(&self) -> Option<i32> {
        match self.value(0) {
            Value::Int(v) => Some(v),
            _ => None,
        }
    }

    /// Whether the vector says "missing" as a whole, as VCF's `.`: no values, a single
    /// missing value (what follows being padding), or a char vector `.` or empty.
    pub fn is_missing(&self) -> bool {
        match self.kind {
            Kind::Missing => true,
            Kind::Char => matches!(self.chars(), b"" | b"."),
            _ => {
                let mut values = self.values();
                matches!(
                    (values.next(), values.next()),
                    (None, _) | (Some(Value::Missing), None)
                )
            }
        }
    }
}

/// Reads a typed vector at `*at` in `buf`, moving `*at` past it. Always inlined: a record's
/// parts are read with it, and a call returning its result through memory stalled them.
#[inline(always)]
pub fn read_typed(buf: &[u8], at: &mut usize) -> Result<TypedAt, String> {
    let Some(&descriptor) = buf.get(*at) else {
        return Err(too_short());
    };
    let count = usize::from(descriptor >> 4);
    if count < 15 {
        // the common case, without a length vector
        let kind = Kind::of(descriptor & 0x0F)?;
        let start = *at + 1;
        let end = start + count * kind.width();
        if end > buf.len() {
            return Err(too_short());
        }
        *at = end;
        return Ok(TypedAt {
            kind,
            count,
            at: start,
        });
    }
    read_long_typed(buf, at)
}

#[cold]
fn too_short() -> String {
    "record too short for its values".to_string()
}

/// [`read_typed`] for a vector whose count follows its descriptor.
#[cold]
#[inline(never)]
fn read_long_typed(buf: &[u8], at: &mut usize) -> Result<TypedAt, String> {
    let short = too_short;
    let descriptor = *buf.get(*at).ok_or_else(short)?;
    *at += 1;
    let kind = Kind::of(descriptor & 0x0F)?;
    let mut count = usize::from(descriptor >> 4);
    if count == 15 {
        let n = read_typed(buf, at)?;
        count = match n.get(buf).first_int() {
            Some(c) if c >= 0 => c as usize,
            _ => return Err("bad BCF vector length".to_string()),
        };
    }
    let len = count
        .checked_mul(kind.width())
        .ok_or_else(|| "BCF vector too long".to_string())?;
    if buf.len() < *at + len {
        return Err(short());
    }
    let typed = TypedAt {
        kind,
        count,
        at: *at,
    };
    *at += len;
    Ok(typed)
}

/// Reads a dictionary key (a typed integer) at `*at`, moving past it.
#[inline(always)]
fn read_key(buf: &[u8], at: &mut usize) -> Option<i32> {
    // keys are almost always one int8
    if buf.get(*at) == Some(&0x11) {
        let k = *buf.get(*at + 1)?;
        *at += 2;
        return match int_value(i32::from(k as i8), INT8_MIN) {
            Value::Int(v) => Some(v),
            _ => None,
        };
    }
    let t = read_typed(buf, at).ok()?;
    t.get(buf).first_int()
}

/// Where the parts of a record's shared section are.
#[derive(Debug, Default, Clone)]
pub struct SharedParts {
    /// ID (a char vector).
    pub id: Option<TypedAt>,
    /// REF then ALT alleles, as byte ranges of the shared section.
    pub alleles: Vec<Range<usize>>,
    /// FILTER (string-dictionary indices).
    pub filter: Option<TypedAt>,
    /// INFO: (string-dictionary key, value).
    pub info: Vec<(i32, TypedAt)>,
}

/// One FORMAT field of a record: its key and the values of every sample, `count` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatBlock {
    /// String-dictionary index of the FORMAT key.
    pub key: i32,
    /// Type of the values.
    pub kind: Kind,
    /// Values per sample.
    pub count: usize,
    /// Offset of the first sample's values in the per-sample section.
    pub at: usize,
}

impl FormatBlock {
    /// The values of sample `s` in the per-sample section `indiv`.
    pub fn sample<'a>(&self, indiv: &'a [u8], s: usize) -> Typed<'a> {
        let len = self.count * self.kind.width();
        let start = self.at + s * len;
        Typed {
            kind: self.kind,
            count: self.count,
            bytes: indiv.get(start..start + len).unwrap_or(&[]),
        }
    }
}

/// What a record must agree with: the sizes of the header's dictionaries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Contigs in the header.
    pub contigs: usize,
    /// Strings (INFO/FORMAT/FILTER IDs) in the header.
    pub strings: usize,
    /// Samples in the header.
    pub samples: usize,
}

impl BcfRecord {
    /// Reads the next record; `Ok(false)` at the end of the input. A record cut short is an
    /// `UnexpectedEof` error.
    pub fn read_from(&mut self, r: &mut impl Read) -> io::Result<bool> {
        let mut lengths = [0u8; 8];
        let mut got = 0;
        while got < lengths.len() {
            match r.read(&mut lengths[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated BCF record",
                    ));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let shared = u32::from_le_bytes([lengths[0], lengths[1], lengths[2], lengths[3]]) as usize;
        let indiv = u32::from_le_bytes([lengths[4], lengths[5], lengths[6], lengths[7]]) as usize;
        if shared < 24 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("BCF record with a shared part of {shared} bytes (at least 24)"),
            ));
        }
        let total = shared + indiv;
        let truncated = || io::Error::new(io::ErrorKind::UnexpectedEof, "truncated BCF record");
        if total <= 1 << 20 {
            if self.buf.len() < total {
                self.buf.resize(total, 0);
            }
            r.read_exact(&mut self.buf[..total])
                .map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => truncated(),
                    _ => e,
                })?;
        } else {
            // a length that large is read as far as the data goes, not allocated on trust
            self.buf.clear();
            if r.take(total as u64).read_to_end(&mut self.buf)? < total {
                return Err(truncated());
            }
        }
        self.len = total;
        self.shared = shared;
        Ok(true)
    }

    /// Appends the record as [`Self::read_from`] reads it (its two lengths, then its bytes).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.shared as u32).to_le_bytes());
        out.extend_from_slice(&((self.len - self.shared) as u32).to_le_bytes());
        out.extend_from_slice(self.bytes());
    }

    /// The shared section.
    pub fn shared(&self) -> &[u8] {
        &self.buf[..self.shared]
    }

    /// The whole record (shared and per-sample sections).
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The per-sample section.
    pub fn indiv(&self) -> &[u8] {
        &self.bytes()[self.shared..]
    }

    fn i32_at(&self, at: usize) -> i32 {
        let b = &self.buf[at..at + 4];
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = &self.buf[at..at + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Index of CHROM in the header's contigs.
    pub fn chrom(&self) -> i32 {
        self.i32_at(0)
    }

    /// POS, 1-based.
    pub fn pos(&self) -> i64 {
        i64::from(self.i32_at(4)) + 1
    }

    /// Length of the reference allele's span (rlen).
    pub fn rlen(&self) -> i64 {
        i64::from(self.i32_at(8))
    }

    /// QUAL (`None` for missing).
    pub fn qual(&self) -> Option<f32> {
        let bits = self.u32_at(12);
        (bits != FLOAT_MISSING).then(|| f32::from_bits(bits))
    }

    /// Number of INFO fields.
    pub fn n_info(&self) -> usize {
        (self.u32_at(16) & 0xFFFF) as usize
    }

    /// Number of alleles (REF and ALTs).
    pub fn n_allele(&self) -> usize {
        (self.u32_at(16) >> 16) as usize
    }

    /// Number of samples.
    pub fn n_sample(&self) -> usize {
        (self.u32_at(20) & 0x00FF_FFFF) as usize
    }

    /// Number of FORMAT fields.
    pub fn n_fmt(&self) -> usize {
        (self.u32_at(20) >> 24) as usize
    }

    /// Takes the shared section apart into `out`; checks it against `limits` and that the
    /// parts fill the section exactly.
    pub fn parse_shared(&self, limits: &Limits, out: &mut SharedParts) -> Result<(), String> {
        let buf = self.shared();
        let chrom = self.chrom();
        if chrom < 0 || chrom as usize >= limits.contigs {
            return Err(format!(
                "CHROM index {chrom} is not one of the header's {} contigs",
                limits.contigs
            ));
        }
        if self.pos() < 0 || self.rlen() < 0 {
            return Err("negative POS or reference length".to_string());
        }
        let mut at = 24;
        out.id = Some(read_typed(buf, &mut at)?);
        out.alleles.clear();
        for _ in 0..self.n_allele() {
            let a = read_typed(buf, &mut at)?;
            if a.kind != Kind::Char {
                return Err("an allele that is not text".to_string());
            }
            let chars = a.get(buf).chars();
            out.alleles.push(a.at..a.at + chars.len());
        }
        let filter = read_typed(buf, &mut at)?;
        out.filter = Some(filter);
        out.info.clear();
        for _ in 0..self.n_info() {
            let key = read_key(buf, &mut at)
                .filter(|k| *k >= 0 && (*k as usize) < limits.strings)
                .ok_or_else(|| "INFO key outside the header's dictionary".to_string())?;
            let value = read_typed(buf, &mut at)?;
            out.info.push((key, value));
        }
        if at != buf.len() {
            return Err(format!(
                "shared part is {} bytes, its fields fill {at}",
                buf.len()
            ));
        }
        Ok(())
    }

    /// The FORMAT blocks of the per-sample section, into `out`; checks them against `limits`
    /// and the section's length.
    pub fn parse_formats(&self, limits: &Limits, out: &mut Vec<FormatBlock>) -> Result<(), String> {
        out.clear();
        let buf = self.indiv();
        let n = self.n_sample();
        if self.n_fmt() > 0 && n != limits.samples {
            return Err(format!(
                "record has {n} samples, the header names {}",
                limits.samples
            ));
        }
        let mut at = 0;
        for _ in 0..self.n_fmt() {
            let key = read_key(buf, &mut at)
                .filter(|k| *k >= 0 && (*k as usize) < limits.strings)
                .ok_or_else(|| "FORMAT key outside the header's dictionary".to_string())?;
            // the descriptor of one sample's vector; the samples' vectors follow
            let mut probe = at;
            let one = read_typed_descriptor(buf, &mut probe)?;
            let len = one
                .1
                .checked_mul(one.0.width())
                .and_then(|l| l.checked_mul(n))
                .ok_or_else(|| "BCF vector too long".to_string())?;
            if buf.len() < probe + len {
                return Err("record too short for its values".to_string());
            }
            out.push(FormatBlock {
                key,
                kind: one.0,
                count: one.1,
                at: probe,
            });
            at = probe + len;
        }
        // bytes after the last field are tolerated, as htslib does: some writers (noodles)
        // write a value per sample after a vector of count 0 when a field is missing for all
        Ok(())
    }
}

/// Reads only a typed vector's descriptor (and its count): the values follow for every sample.
fn read_typed_descriptor(buf: &[u8], at: &mut usize) -> Result<(Kind, usize), String> {
    let descriptor = *buf
        .get(*at)
        .ok_or_else(|| "record too short for its values".to_string())?;
    *at += 1;
    let kind = Kind::of(descriptor & 0x0F)?;
    let mut count = usize::from(descriptor >> 4);
    if count == 15 {
        let n = read_typed(buf, at)?;
        count = match n.get(buf).first_int() {
            Some(c) if c >= 0 => c as usize,
            _ => return Err("bad BCF vector length".to_string()),
        };
    }
    Ok((kind, count))
}

/// A BCF float as the f64 nearest to its shortest decimal form (what VCF text would say):
/// `0.1f32` becomes `0.1`, not `0.10000000149…`, so that comparisons agree with the VCF file
/// and with bcftools.
pub fn decimal_f64(f: f32) -> f64 {
    if !f.is_finite() {
        return f64::from(f);
    }
    let x = f64::from(f);
    if x == 0.0 {
        return x;
    }
    // the fewest significant digits that give `f` back: the nearest decimal of that many
    // digits, made with exact powers of ten so that the result is the f64 nearest to it
    // ⌊log10 |x|⌋ from the binary exponent, perhaps one off: the search below corrects it
    let exponent = ((f.to_bits() >> 23) & 0xFF) as i32 - 127;
    let magnitude = (exponent * 1233) >> 12;
    for digits in 1..=9 {
        let k = digits - 1 - magnitude;
        let candidate = if (0..=22).contains(&k) {
            let scale = POW10[k as usize];
            (x * scale).round_ties_even() / scale
        } else if (-22..0).contains(&k) {
            let scale = POW10[(-k) as usize];
            (x / scale).round_ties_even() * scale
        } else {
            break;
        };
        if candidate as f32 == f {
            return candidate;
        }
    }
    // out of the range of exact powers of ten: the slower shortest-decimal route
    let mut buffer = ryu::Buffer::new();
    buffer.format_finite(f).parse().unwrap_or(x)
}

/// 10⁰ … 10²², each exact as an f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Appends the text of a BCF GT vector (`0|1`, `./.`, `1`) to `out`: each value is
/// `(allele + 1) << 1 | phased`, 0 a missing allele, the separator before an allele `|` when
/// it is phased.
pub fn gt_text(gt: &Typed<'_>, out: &mut Vec<u8>) {
    let mut n = 0;
    for v in gt.values() {
        let Value::Int(v) = v else {
            if n == 0 {
                out.push(b'.');
                n += 1;
            }
            continue;
        };
        if n > 0 {
            out.push(if v & 1 == 1 { b'|' } else { b'/' });
        }
        let allele = (v >> 1) - 1;
        if allele < 0 {
            out.push(b'.');
        } else {
            let mut digits = itoa_buf(allele as u32);
            out.append(&mut digits);
        }
        n += 1;
    }
    if n == 0 {
        out.push(b'.');
    }
}

fn itoa_buf(mut v: u32) -> Vec<u8> {
    let mut d = Vec::with_capacity(4);
    loop {
        d.push(b'0' + (v % 10) as u8);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    d.reverse();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_vectors_and_reserved_values() {
        // int8 vector of 3: 5, missing, end
        let buf = [0x31u8, 5, 0x80, 0x81];
        let mut at = 0;
        let t = read_typed(&buf, &mut at).unwrap();
        assert_eq!(at, 4);
        let t = t.get(&buf);
        assert_eq!(
            t.values().collect::<Vec<_>>(),
            vec![Value::Int(5), Value::Missing]
        );
        // reserved int8 values read as missing
        assert_eq!(int_value(-125, INT8_MIN), Value::Missing);
        assert_eq!(int_value(-120, INT8_MIN), Value::Int(-120));
        // a count of 15 or more comes as a typed integer after the descriptor
        let mut long = vec![0xF7u8, 0x11, 20];
        long.extend_from_slice(b"abcdefghijklmnopqrst");
        let mut at = 0;
        let t = read_typed(&long, &mut at).unwrap();
        assert_eq!((t.count, at), (20, 23));
        assert_eq!(t.get(&long).chars(), b"abcdefghijklmnopqrst");
        // too short: an error, not a panic
        assert!(read_typed(&[0x33u8, 1, 2], &mut 0).is_err());
        assert!(read_typed(&[0x04u8], &mut 0).is_err());
    }

    #[test]
    fn genotypes_as_text() {
        let gt = |bytes: &[u8]| {
            let t = Typed {
                kind: Kind::Int8,
                count: bytes.len(),
                bytes,
            };
            let mut out = Vec::new();
            gt_text(&t, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(gt(&[2, 5]), "0|1");
        assert_eq!(gt(&[2, 4]), "0/1");
        assert_eq!(gt(&[0, 0]), "./.");
        assert_eq!(gt(&[4, 0x81]), "1");
        assert_eq!(gt(&[0x80, 0x81]), ".");
        assert_eq!(gt(&[24, 3]), "11|0");
    }

    #[test]
    fn floats_read_as_their_decimal() {
        assert_eq!(decimal_f64(0.1), 0.1);
        assert_eq!(decimal_f64(29.5), 29.5);
        assert_eq!(decimal_f64(1e-8), 1e-8);
        assert_eq!(decimal_f64(-0.0216), -0.0216);
        assert_eq!(decimal_f64(123456.7), 123456.7);
        assert_eq!(decimal_f64(3.4e38), 3.4e38);
        assert!(decimal_f64(f32::NAN).is_nan());
        // the same as the shortest decimal form, over many values
        let mut bits = 0x3c23d70au32;
        for _ in 0..200_000 {
            bits = bits.wrapping_mul(1664525).wrapping_add(1013904223);
            let f = f32::from_bits(bits);
            if !f.is_finite() {
                continue;
            }
            let mut buffer = ryu::Buffer::new();
            let want: f64 = buffer.format_finite(f).parse().unwrap();
            assert_eq!(decimal_f64(f).to_bits(), want.to_bits(), "{f:e}");
        }
    }

    #[test]
    fn a_damaged_record_is_an_error() {
        let mut rec = BcfRecord::default();
        // lengths claim more than there is
        let mut bytes = 100u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 30]);
        assert!(rec.read_from(&mut bytes.as_slice()).is_err());
        // a shared part too small to hold its fixed fields
        let mut small = 8u32.to_le_bytes().to_vec();
        small.extend_from_slice(&0u32.to_le_bytes());
        small.extend_from_slice(&[0u8; 8]);
        assert!(rec.read_from(&mut small.as_slice()).is_err());
        assert!(!rec.read_from(&mut [].as_slice()).unwrap());
    }
}
