//! Scalar functions of vcfq.
//!
//! Genotype helpers over the text form of GT (`'0|1'`, `'./.'`, `'1'`, `'0/1/2'`):
//! - `gt_alleles(GT)` → `List<Int32>`: allele indices, NULL elements for `.`;
//! - `gt_phased(GT)` → Boolean: true when every separator is `|` (NULL for a missing GT);
//! - `gt_dosage(GT)` → Int32: how many called alleles are not the reference (NULL when no
//!   allele is called);
//! - `gt_is_het(GT)` → Boolean: at least two different called alleles.
//!
//! Each takes GT as text or dictionary-encoded text (as `vcf_genotypes` gives it); a
//! dictionary is evaluated once per distinct value.
//!
//! Vector distances ([`distance`]): `cosine_distance`, `l2_distance`, `inner_product` on
//! `FixedSizeList<Float32>` and constant query vectors, computed in `Float32`.
//!
//! Embeddings ([`embedding`]): `dosage_vector(genotypes)` (centred, unit-length dosages:
//! cosine similarity² is LD r²) and `variant_embedding(chrom, pos, ref, alt [, x…])`
//! (model-free features of kind and place).
//!
//! Text embeddings ([`text`]): `embed_text(text)`, all-MiniLM-L6-v2 run in Rust.
//!
//! Array literals of numbers ([`literal`]) are planned as one constant.
//!
//! [`register_all`] adds every function to a session.

pub mod dictionary;
pub mod distance;
pub mod embedding;
pub mod literal;
pub mod text;

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int32Builder, ListBuilder, StringArray,
};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// A parsed genotype: allele indices (`None` for `.`) and whether it is phased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genotype {
    /// Allele indices in order; `None` for a missing allele.
    pub alleles: Vec<Option<i32>>,
    /// True when all separators are `|` (a haploid call counts as phased only if written `|0`).
    pub phased: bool,
}

/// Parses GT text; `None` for an empty string or text that is not a genotype.
pub fn parse_gt(text: &str) -> Option<Genotype> {
    let mut alleles = Vec::new();
    let phased = scan_gt(text.trim().as_bytes(), |a| {
        alleles.push(a.and_then(|a| i32::try_from(a).ok()))
    })?;
    Some(Genotype { alleles, phased })
}

/// Visits the alleles of a GT text without allocating: `f(None)` for `.`, `f(Some(i))` for
/// allele `i`. Returns whether the call is phased, or `None` when the text is not a genotype.
pub fn scan_gt(text: &[u8], mut f: impl FnMut(Option<u32>)) -> Option<bool> {
    let (body, lead) = match text.first() {
        Some(b'|') => (&text[1..], Some(true)),
        Some(b'/') => (&text[1..], Some(false)),
        Some(_) => (text, None),
        None => return None,
    };
    let mut phased = true;
    let mut separators = 0;
    let mut value: Option<u32> = None;
    let mut dot = false;
    let mut any = false;
    for &b in body {
        match b {
            b'0'..=b'9' if !dot => {
                value = Some(
                    value
                        .unwrap_or(0)
                        .checked_mul(10)?
                        .checked_add(u32::from(b - b'0'))?,
                );
                any = true;
            }
            b'.' if value.is_none() && !dot => {
                dot = true;
                any = true;
            }
            b'/' | b'|' if any => {
                f(value);
                separators += 1;
                phased &= b == b'|';
                value = None;
                dot = false;
                any = false;
            }
            _ => return None,
        }
    }
    if !any {
        return None;
    }
    f(value);
    Some(if separators == 0 {
        lead.unwrap_or(false)
    } else {
        phased && lead != Some(false)
    })
}

/// A genotype helper: one function of a GT text, evaluated over a column of GT text — plain
/// (`Utf8`, `LargeUtf8`, `Utf8View`) or dictionary-encoded, as `vcf_genotypes` gives it. A
/// dictionary is evaluated once per distinct value, and the results are taken by key, so a
/// cohort's millions of calls cost a handful of evaluations.
#[derive(Debug, PartialEq, Eq, Hash)]
struct GtFunction {
    name: &'static str,
    output: DataType,
    signature: Signature,
    helper: Helper,
}

/// Which genotype helper a [`GtFunction`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Helper {
    Alleles,
    Phased,
    Dosage,
    IsHet,
}

impl Helper {
    /// The helper over plain GT text.
    fn eval(self, text: &StringArray) -> ArrayRef {
        match self {
            Helper::Alleles => alleles_of(text),
            Helper::Phased => booleans(text, phased),
            Helper::Dosage => dosages(text),
            Helper::IsHet => booleans(text, is_het),
        }
    }
}

impl GtFunction {
    fn new(name: &'static str, output: DataType, helper: Helper) -> Self {
        GtFunction {
            name,
            output,
            signature: Signature::user_defined(Volatility::Immutable),
            helper,
        }
    }

    fn evaluate(&self, array: &ArrayRef) -> Result<ArrayRef> {
        if let Some(dict) = array.as_any_dictionary_opt() {
            let values = self.evaluate(dict.values())?;
            return Ok(take(values.as_ref(), dict.keys(), None)?);
        }
        let text = cast(array, &DataType::Utf8)?;
        Ok(self.helper.eval(text.as_string::<i32>()))
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

impl ScalarUDFImpl for GtFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.output.clone())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if is_text(t) => Ok(vec![t.clone()]),
            [DataType::Dictionary(k, v)] if is_text(v) => {
                Ok(vec![DataType::Dictionary(k.clone(), v.clone())])
            }
            [DataType::Null] => Ok(vec![DataType::Utf8]),
            [other] => plan_err!("{}(GT) takes genotype text, not {other}", self.name),
            args => plan_err!("{}(GT) takes 1 argument, got {}", self.name, args.len()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return plan_err!("{}(GT) takes 1 argument", self.name);
        };
        unary(arg, |array| self.evaluate(array))
    }
}

fn alleles_of(text: &StringArray) -> ArrayRef {
    let mut b = ListBuilder::new(Int32Builder::new());
    for v in text.iter() {
        match v.and_then(parse_gt) {
            Some(g) => {
                for a in g.alleles {
                    b.values().append_option(a);
                }
                b.append(true);
            }
            None => b.append_null(),
        }
    }
    Arc::new(b.finish())
}

fn booleans(text: &StringArray, f: fn(&[u8]) -> Option<bool>) -> ArrayRef {
    let mut b = BooleanBuilder::with_capacity(text.len());
    for v in text.iter() {
        b.append_option(v.and_then(|v| f(v.as_bytes())));
    }
    Arc::new(b.finish())
}

fn dosages(text: &StringArray) -> ArrayRef {
    let mut b = Int32Builder::with_capacity(text.len());
    for v in text.iter() {
        b.append_option(v.and_then(|v| dosage(v.as_bytes())));
    }
    Arc::new(b.finish())
}

fn gt_alleles() -> ScalarUDF {
    let item = DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)));
    ScalarUDF::new_from_impl(GtFunction::new("gt_alleles", item, Helper::Alleles))
}

fn gt_phased() -> ScalarUDF {
    ScalarUDF::new_from_impl(GtFunction::new(
        "gt_phased",
        DataType::Boolean,
        Helper::Phased,
    ))
}

fn gt_is_het() -> ScalarUDF {
    ScalarUDF::new_from_impl(GtFunction::new(
        "gt_is_het",
        DataType::Boolean,
        Helper::IsHet,
    ))
}

fn gt_dosage() -> ScalarUDF {
    ScalarUDF::new_from_impl(GtFunction::new(
        "gt_dosage",
        DataType::Int32,
        Helper::Dosage,
    ))
}

/// Non-reference called alleles of a GT text; `None` when no allele is called.
pub fn dosage(gt: &[u8]) -> Option<i32> {
    let (mut called, mut alt) = (0, 0);
    scan_gt(gt, |a| {
        if let Some(a) = a {
            called += 1;
            alt += i32::from(a > 0);
        }
    })?;
    (called > 0).then_some(alt)
}

/// Whether a GT has two different called alleles; `None` when no allele is called.
pub fn is_het(gt: &[u8]) -> Option<bool> {
    let (mut first, mut het) = (None, false);
    scan_gt(gt, |a| {
        if let Some(a) = a {
            het |= first.is_some_and(|f| f != a);
            first.get_or_insert(a);
        }
    })?;
    first.map(|_| het)
}

/// Whether a GT is phased; `None` for a call with no allele called.
pub fn phased(gt: &[u8]) -> Option<bool> {
    let mut called = false;
    let p = scan_gt(gt, |a| called |= a.is_some())?;
    called.then_some(p)
}

/// `f` over a function's one argument: an array as it is, a constant as an array of one row
/// and back to a constant.
pub(crate) fn unary(
    arg: &ColumnarValue,
    f: impl FnOnce(&ArrayRef) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    match arg {
        ColumnarValue::Array(array) => Ok(ColumnarValue::Array(f(array)?)),
        ColumnarValue::Scalar(scalar) => {
            let array = f(&scalar.to_array()?)?;
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?))
        }
    }
}

/// Every scalar function of this crate.
pub fn all() -> Vec<ScalarUDF> {
    let mut all = vec![gt_alleles(), gt_phased(), gt_dosage(), gt_is_het()];
    all.extend(distance::all());
    all.extend(embedding::all());
    all.push(text::embed_text());
    all
}

/// Registers every function of this crate in `ctx`, and makes the text predicates of
/// [`dictionary::WRAPPED`] run once per value of a dictionary-encoded column.
pub fn register_all(ctx: &SessionContext) {
    for f in all() {
        ctx.register_udf(f);
    }
    for name in dictionary::WRAPPED {
        if let Ok(inner) = datafusion::execution::FunctionRegistry::udf(ctx, name) {
            ctx.register_udf(dictionary::per_dictionary_value(&inner));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_genotypes() {
        assert_eq!(
            parse_gt("0|1"),
            Some(Genotype {
                alleles: vec![Some(0), Some(1)],
                phased: true
            })
        );
        assert_eq!(
            parse_gt("./."),
            Some(Genotype {
                alleles: vec![None, None],
                phased: false
            })
        );
        assert_eq!(
            parse_gt("1"),
            Some(Genotype {
                alleles: vec![Some(1)],
                phased: false
            })
        );
        assert_eq!(parse_gt("0/1|2").map(|g| g.phased), Some(false));
        assert_eq!(parse_gt("x/1"), None);
        assert_eq!(parse_gt(""), None);
        assert_eq!(
            parse_gt("10/2").map(|g| g.alleles),
            Some(vec![Some(10), Some(2)])
        );
        assert_eq!(
            parse_gt(".|1"),
            Some(Genotype {
                alleles: vec![None, Some(1)],
                phased: true
            })
        );
        assert_eq!(parse_gt("|1").map(|g| g.phased), Some(true));
        for bad in ["1//2", "1..", "1/", "/"] {
            assert_eq!(parse_gt(bad), None, "{bad}");
        }
    }

    #[test]
    fn dictionaries_are_evaluated_per_value_and_taken_by_key() {
        use datafusion::arrow::array::{DictionaryArray, Int32Array};
        use datafusion::arrow::datatypes::Int32Type;
        let values = StringArray::from(vec!["0|0", "0|1", "1|1"]);
        let keys = Int32Array::from(vec![Some(0), Some(2), None, Some(1), Some(2)]);
        let dict: ArrayRef =
            Arc::new(DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)).unwrap());
        let f = GtFunction::new("gt_dosage", DataType::Int32, Helper::Dosage);
        let out = f.evaluate(&dict).unwrap();
        let out = out.as_primitive::<Int32Type>();
        assert_eq!(
            out.iter().collect::<Vec<_>>(),
            vec![Some(0), Some(2), None, Some(1), Some(2)]
        );
        let het = GtFunction::new("gt_is_het", DataType::Boolean, Helper::IsHet);
        let out = het.evaluate(&dict).unwrap();
        assert_eq!(
            out.as_boolean().iter().collect::<Vec<_>>(),
            vec![Some(false), Some(false), None, Some(true), Some(false)]
        );
        assert!(f.coerce_types(&[DataType::Int64]).is_err());
        assert_eq!(
            f.coerce_types(&[DataType::Dictionary(
                Box::new(DataType::Int32),
                Box::new(DataType::Utf8)
            )])
            .unwrap()
            .len(),
            1
        );
    }

    #[test]
    fn dosage_and_het() {
        assert_eq!(dosage(b"0/1"), Some(1));
        assert_eq!(dosage(b"1|2"), Some(2));
        assert_eq!(dosage(b"./."), None);
        assert_eq!(dosage(b"0/."), Some(0));
        assert_eq!(dosage(b"0/0/1"), Some(1));
        assert_eq!(dosage(b"x/1"), None);
        assert_eq!(dosage(b"1/"), None);
        assert_eq!(is_het(b"0/1"), Some(true));
        assert_eq!(is_het(b"1/1"), Some(false));
        assert_eq!(is_het(b"."), None);
        assert_eq!(phased(b"./."), None);
        assert_eq!(phased(b"0|1"), Some(true));
        assert_eq!(phased(b"0|1/1"), Some(false));
        assert_eq!(phased(b"1"), Some(false));
        assert_eq!(phased(b"|1"), Some(true));
    }
}
