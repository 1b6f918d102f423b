//! Model-free embeddings: `dosage_vector(genotypes)` and `variant_embedding(chrom, pos, ref,
//! alt [, x…])`.
//!
//! **`dosage_vector`** takes one variant's genotypes — the `genotypes` column of a VCF table
//! (`List<Struct<sample, GT, …>>`), a list of GT texts (`array_agg(GT ORDER BY sample)` over
//! `vcf_genotypes`) or a list of dosages — and gives `List<Float32>`, one element per sample:
//! the sample's ALT-allele count ([`crate::dosage`]), minus the mean over the called samples,
//! the whole vector scaled to length 1. A sample without a called allele gets 0 (the mean).
//! Two such vectors' cosine similarity is the Pearson correlation of the dosages, so its square
//! is the LD r² between the two variants (for samples called at both); `1 - cosine_distance`
//! is r. A variant with no variation among called samples has no direction: NULL.
//!
//! **`variant_embedding`** gives `FixedSizeList<Float32>` of [`VARIANT_DIMENSIONS`] plus one
//! element per extra argument, L2-normalised, from the alleles and position alone (no model, no
//! reference genome), so that variants alike in kind and place are near:
//!
//! | elements | feature |
//! |---|---|
//! | 0–7 | class, one-hot: SNV, insertion, deletion, MNV, complex indel, symbolic (`<DEL>`…), breakend, none (`.`/`*`) |
//! | 8–15 | SNV bases, one-hot: REF A/C/G/T, then ALT A/C/G/T |
//! | 16 | +1 transition, −1 transversion, 0 not an SNV |
//! | 17–19 | ln(1+len REF)/4, ln(1+len ALT)/4, tanh((len ALT − len REF)/10) |
//! | 20–21 | GC fraction of REF, of ALT |
//! | 22–29 | contig: a fixed pseudo-random unit vector per contig name (`chr` prefix ignored), × 0.5 |
//! | 30–41 | position: sin and cos of 2π·pos/s for s = 10³ … 10⁸, × 0.25 |
//! | 42… | the extra arguments as numbers (NULL as 0), e.g. `info.AF[1]` |
//!
//! The first ALT allele is the one embedded (the others are ignored). Everything is computed in
//! the same order every time: the same variant always gives the same vector.

use std::f64::consts::TAU;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array, Float32Builder, ListArray,
    ListBuilder, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Elements of a variant embedding before the extra arguments.
pub const VARIANT_DIMENSIONS: usize = 42;

/// The two embedding functions.
pub fn all() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(DosageVector::new()),
        ScalarUDF::new_from_impl(VariantEmbedding::new()),
    ]
}

/// Centred, unit-length dosages (`None` when no two called samples differ); `None` input
/// elements are samples without a called allele.
pub fn centred_dosages(dosages: &[Option<f64>]) -> Option<Vec<f32>> {
    let called: Vec<f64> = dosages.iter().flatten().copied().collect();
    if called.is_empty() {
        return None;
    }
    let mean = called.iter().sum::<f64>() / called.len() as f64;
    let centred: Vec<f64> = dosages
        .iter()
        .map(|d| d.map_or(0.0, |d| d - mean))
        .collect();
    let norm = centred.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return None;
    }
    Some(centred.iter().map(|x| (x / norm) as f32).collect())
}

/// `dosage_vector(genotypes)` (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DosageVector {
    signature: Signature,
}

impl DosageVector {
    fn new() -> Self {
        DosageVector {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn float_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float32, true)))
}

/// The GT texts of a genotypes-like list's items: the `GT` member of structs, or the items.
fn gt_items(items: &ArrayRef) -> Result<Option<ArrayRef>> {
    match items.data_type() {
        DataType::Struct(_) => match items.as_struct().column_by_name("GT") {
            Some(gt) => Ok(Some(cast(gt, &DataType::Utf8)?)),
            None => Ok(None),
        },
        t if t.is_numeric() => Ok(Some(cast(items, &DataType::Float64)?)),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            Ok(Some(cast(items, &DataType::Utf8)?))
        }
        DataType::Null => Ok(Some(cast(items, &DataType::Float64)?)),
        _ => Ok(None),
    }
}

impl ScalarUDFImpl for DosageVector {
    fn name(&self) -> &str {
        "dosage_vector"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(float_list())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let usable = |item: &DataType| match item {
            DataType::Struct(fields) => fields.iter().any(|f| f.name() == "GT"),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => true,
            DataType::Dictionary(_, v) => {
                matches!(v.as_ref(), DataType::Utf8 | DataType::LargeUtf8)
            }
            t => t.is_numeric(),
        };
        match arg_types {
            [DataType::List(f)] if usable(f.data_type()) => Ok(arg_types.to_vec()),
            [DataType::LargeList(f) | DataType::FixedSizeList(f, _)] if usable(f.data_type()) => {
                Ok(vec![DataType::List(Arc::clone(f))])
            }
            [DataType::Null] => Ok(arg_types.to_vec()),
            [other] => plan_err!(
                "dosage_vector takes genotypes (a list of structs with GT, of GT texts or of dosages), got {other}"
            ),
            args => plan_err!("dosage_vector takes 1 argument, got {}", args.len()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return plan_err!("dosage_vector takes 1 argument");
        };
        crate::unary(arg, dosage_vectors)
    }
}

fn dosage_vectors(array: &ArrayRef) -> Result<ArrayRef> {
    let mut out = ListBuilder::new(Float32Builder::new());
    if array.data_type() == &DataType::Null {
        for _ in 0..array.len() {
            out.append_null();
        }
        return Ok(Arc::new(out.finish()));
    }
    let lists: &ListArray = array.as_list();
    let Some(items) = gt_items(lists.values())? else {
        return exec_err!("dosage_vector: no GT among the genotypes");
    };
    let texts = items.as_string_opt::<i32>();
    let numbers = items.as_primitive_opt::<Float64Type>();
    let offsets = lists.value_offsets();
    let mut dosages: Vec<Option<f64>> = Vec::new();
    for row in 0..lists.len() {
        if lists.is_null(row) {
            out.append_null();
            continue;
        }
        dosages.clear();
        for j in offsets[row] as usize..offsets[row + 1] as usize {
            dosages.push(if let Some(t) = texts {
                t.is_valid(j)
                    .then(|| crate::dosage(t.value(j).as_bytes()))
                    .flatten()
                    .map(f64::from)
            } else if let Some(n) = numbers {
                n.is_valid(j).then(|| n.value(j)).filter(|v| v.is_finite())
            } else {
                None
            });
        }
        match centred_dosages(&dosages) {
            Some(v) => out.append_value(v.into_iter().map(Some)),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `variant_embedding(chrom, pos, ref, alt [, x…])` (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct VariantEmbedding {
    signature: Signature,
}

impl VariantEmbedding {
    fn new() -> Self {
        VariantEmbedding {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn vector_type(extra: usize) -> DataType {
    DataType::FixedSizeList(
        Arc::new(Field::new_list_field(DataType::Float32, true)),
        (VARIANT_DIMENSIONS + extra) as i32,
    )
}

impl ScalarUDFImpl for VariantEmbedding {
    fn name(&self) -> &str {
        "variant_embedding"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(vector_type(arg_types.len().saturating_sub(4)))
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() < 4 {
            return plan_err!(
                "variant_embedding takes chrom, pos, ref, alt and optional numbers, got {} arguments",
                arg_types.len()
            );
        }
        let text = DataType::Utf8;
        let mut out = vec![text.clone(), DataType::Int64, text.clone()];
        out.push(match &arg_types[3] {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
                if f.data_type() != &DataType::Null =>
            {
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
            }
            _ => text,
        });
        for (i, t) in arg_types.iter().enumerate().skip(4) {
            if !(t.is_numeric() || t == &DataType::Null || t == &DataType::Boolean) {
                return plan_err!(
                    "variant_embedding: extra argument {} must be a number, got {t}",
                    i + 1
                );
            }
            out.push(DataType::Float64);
        }
        Ok(out)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if scalar { 1 } else { rows };
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<Vec<_>>>()?;
        let out = variant_embeddings(&arrays, n)?;
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

fn variant_embeddings(arrays: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    let chrom: &StringArray = arrays[0].as_string();
    let pos = arrays[1].as_primitive::<Int64Type>();
    let reference: &StringArray = arrays[2].as_string();
    let alt = &arrays[3];
    let extras: Vec<_> = arrays[4..]
        .iter()
        .map(|a| a.as_primitive::<Float64Type>())
        .collect();
    let width = VARIANT_DIMENSIONS + extras.len();
    let mut values: Vec<f32> = Vec::with_capacity(rows * width);
    let mut nulls = Vec::with_capacity(rows);
    let mut v = vec![0f64; width];
    for i in 0..rows {
        let first_alt = match alt.data_type() {
            DataType::List(_) => {
                let list = alt.as_list::<i32>();
                let items: &StringArray = list.values().as_string();
                let start = list.value_offsets()[i] as usize;
                (list.is_valid(i) && list.value_length(i) > 0 && items.is_valid(start))
                    .then(|| items.value(start))
            }
            _ => {
                let a: &StringArray = alt.as_string();
                a.is_valid(i)
                    .then(|| a.value(i).split(',').next().unwrap_or(""))
            }
        };
        let valid = chrom.is_valid(i) && pos.is_valid(i) && reference.is_valid(i);
        nulls.push(valid);
        v.iter_mut().for_each(|x| *x = 0.0);
        if valid {
            features(
                chrom.value(i),
                pos.value(i),
                reference.value(i),
                first_alt,
                &mut v,
            );
            for (k, e) in extras.iter().enumerate() {
                v[VARIANT_DIMENSIONS + k] = if e.is_valid(i) && e.value(i).is_finite() {
                    e.value(i)
                } else {
                    0.0
                };
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|x| *x /= norm);
            }
        }
        values.extend(v.iter().map(|x| *x as f32));
    }
    let field = Arc::new(Field::new_list_field(DataType::Float32, true));
    Ok(Arc::new(FixedSizeListArray::try_new(
        field,
        width as i32,
        Arc::new(Float32Array::from(values)),
        Some(nulls.into()),
    )?))
}

/// What kind of variant an allele pair is (the index of its one-hot element).
fn class(reference: &str, alt: Option<&str>) -> usize {
    let Some(alt) = alt else { return 7 };
    if alt == "." || alt == "*" || alt.is_empty() {
        return 7;
    }
    if alt.starts_with('<') {
        return 5;
    }
    if alt.contains('[') || alt.contains(']') || alt.starts_with('.') || alt.ends_with('.') {
        return 6;
    }
    let (r, a) = (reference.len(), alt.len());
    match (r, a) {
        (1, 1) => 0,
        _ if r == a => 3,
        _ if r < a && alt.starts_with(reference) => 1,
        _ if a < r && reference.starts_with(alt) => 2,
        _ => 4,
    }
}

fn base_index(b: u8) -> Option<usize> {
    match b.to_ascii_uppercase() {
        b'A' => Some(0),
        b'C' => Some(1),
        b'G' => Some(2),
        b'T' => Some(3),
        _ => None,
    }
}

fn gc_fraction(s: &str) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let gc = s
        .bytes()
        .filter(|b| matches!(b.to_ascii_uppercase(), b'G' | b'C'))
        .count();
    gc as f64 / s.len() as f64
}

/// SplitMix64: the contig vectors' pseudo-random numbers (fixed: the same name, the same vector).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The features of one variant into `v` (its first [`VARIANT_DIMENSIONS`] elements).
fn features(chrom: &str, pos: i64, reference: &str, alt: Option<&str>, v: &mut [f64]) {
    let kind = class(reference, alt);
    v[kind] = 1.0;
    let alt_text = alt.unwrap_or("");
    if kind == 0 {
        let (r, a) = (reference.as_bytes()[0], alt_text.as_bytes()[0]);
        if let (Some(ri), Some(ai)) = (base_index(r), base_index(a)) {
            v[8 + ri] = 1.0;
            v[12 + ai] = 1.0;
            // purines A/G = 0/2, pyrimidines C/T = 1/3: a transition stays within one
            v[16] = if ri % 2 == ai % 2 { 1.0 } else { -1.0 };
        }
    }
    let symbolic = matches!(kind, 5..=7);
    let alt_len = if symbolic { 0 } else { alt_text.len() };
    v[17] = (1.0 + reference.len() as f64).ln() / 4.0;
    v[18] = (1.0 + alt_len as f64).ln() / 4.0;
    v[19] = ((alt_len as f64 - reference.len() as f64) / 10.0).tanh();
    v[20] = gc_fraction(reference);
    v[21] = if symbolic { 0.0 } else { gc_fraction(alt_text) };
    // contig: FNV-1a of the name without `chr`, as the seed of a unit vector
    let name = chrom.strip_prefix("chr").unwrap_or(chrom);
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        seed = (seed ^ u64::from(b.to_ascii_uppercase())).wrapping_mul(0x0100_0000_01b3);
    }
    let mut contig = [0f64; 8];
    for c in &mut contig {
        *c = (splitmix(&mut seed) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
    }
    let norm = contig
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    for (k, c) in contig.iter().enumerate() {
        v[22 + k] = 0.5 * c / norm;
    }
    for (k, scale) in [1e3, 1e4, 1e5, 1e6, 1e7, 1e8].iter().enumerate() {
        let angle = TAU * (pos as f64) / scale;
        v[30 + 2 * k] = 0.25 * angle.sin();
        v[31 + 2 * k] = 0.25 * angle.cos();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embed(chrom: &str, pos: i64, reference: &str, alt: &str) -> Vec<f64> {
        let mut v = vec![0.0; VARIANT_DIMENSIONS];
        features(chrom, pos, reference, Some(alt), &mut v);
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter().map(|x| x / norm).collect()
    }

    fn cos(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn classes_follow_the_alleles() {
        assert_eq!(class("A", Some("G")), 0);
        assert_eq!(class("A", Some("AT")), 1);
        assert_eq!(class("AT", Some("A")), 2);
        assert_eq!(class("AC", Some("GT")), 3);
        assert_eq!(class("AC", Some("T")), 4);
        assert_eq!(class("A", Some("<DEL>")), 5);
        assert_eq!(class("G", Some("G]17:198982]")), 6);
        assert_eq!(class("A", Some("*")), 7);
        assert_eq!(class("A", None), 7);
    }

    #[test]
    fn alike_variants_are_nearer_than_unalike_ones() {
        let transition = embed("chr1", 1_000_000, "A", "G");
        let other_transition = embed("chr1", 1_000_050, "C", "T");
        let deletion = embed("chr1", 1_000_050, "CTT", "C");
        assert!(cos(&transition, &other_transition) > cos(&transition, &deletion));
        // the same allele change, near or far on its contig, or on another contig
        let near = embed("chr1", 1_000_100, "A", "G");
        let far = embed("chr1", 90_000_000, "A", "G");
        let elsewhere = embed("chr7", 1_000_100, "A", "G");
        assert!(cos(&transition, &near) > cos(&transition, &far));
        assert!(cos(&transition, &near) > cos(&transition, &elsewhere));
        // `chr1` and `1` are one contig
        assert_eq!(embed("1", 5, "A", "G"), embed("chr1", 5, "A", "G"));
    }

    #[test]
    fn centred_dosages_correlate_as_pearson() {
        let a = [Some(0.0), Some(1.0), Some(2.0), Some(1.0), Some(0.0)];
        let b = [Some(0.0), Some(1.0), Some(1.0), Some(2.0), Some(0.0)];
        let (va, vb) = (centred_dosages(&a).unwrap(), centred_dosages(&b).unwrap());
        let r: f64 = va.iter().zip(&vb).map(|(x, y)| *x as f64 * *y as f64).sum();
        // Pearson r of a and b by the textbook formula
        let mean = |x: &[Option<f64>]| x.iter().flatten().sum::<f64>() / 5.0;
        let (ma, mb) = (mean(&a), mean(&b));
        let cov: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x.unwrap() - ma) * (y.unwrap() - mb))
            .sum();
        let sd = |x: &[Option<f64>], m: f64| {
            x.iter()
                .map(|v| (v.unwrap() - m).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let pearson = cov / (sd(&a, ma) * sd(&b, mb));
        assert!((r - pearson).abs() < 1e-6, "{r} vs {pearson}");
        let norm: f64 = va.iter().map(|x| (*x as f64).powi(2)).sum();
        assert!((norm - 1.0).abs() < 1e-6);
        // no variation, or nothing called: no vector
        assert_eq!(centred_dosages(&[Some(1.0), Some(1.0), None]), None);
        assert_eq!(centred_dosages(&[None, None]), None);
        // an uncalled sample sits at the mean
        let v = centred_dosages(&[Some(0.0), None, Some(2.0)]).unwrap();
        assert_eq!(v[1], 0.0);
    }
}
