//! Scalar functions of vcfq.
//!
//! Genotype helpers over the text form of GT (`'0|1'`, `'./.'`, `'1'`, `'0/1/2'`):
//! - `gt_alleles(GT)` → `List<Int32>`: allele indices, NULL elements for `.`;
//! - `gt_phased(GT)` → Boolean: true when every separator is `|` (NULL for a missing GT);
//! - `gt_dosage(GT)` → Int32: how many called alleles are not the reference (NULL when no
//!   allele is called);
//! - `gt_is_het(GT)` → Boolean: at least two different called alleles.
//!
//! Embedding and vector functions will join them here; [`register_all`] adds every function to
//! a session.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int32Builder, ListBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
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

fn strings(args: &[ColumnarValue]) -> Result<(ArrayRef, bool)> {
    let scalar = matches!(args[0], ColumnarValue::Scalar(_));
    let array = args[0].to_array(1)?;
    Ok((cast(&array, &DataType::Utf8)?, scalar))
}

fn output(array: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    if scalar {
        Ok(ColumnarValue::Scalar(
            datafusion::scalar::ScalarValue::try_from_array(&array, 0)?,
        ))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

fn gt_alleles() -> ScalarUDF {
    let item = DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)));
    create_udf(
        "gt_alleles",
        vec![DataType::Utf8],
        item,
        Volatility::Immutable,
        Arc::new(|args| {
            let (array, scalar) = strings(args)?;
            let mut b = ListBuilder::new(Int32Builder::new());
            for v in array.as_string::<i32>().iter() {
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
            output(Arc::new(b.finish()), scalar)
        }),
    )
}

fn bool_udf(name: &str, f: fn(&[u8]) -> Option<bool>) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Utf8],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(move |args| {
            let (array, scalar) = strings(args)?;
            let mut b = BooleanBuilder::with_capacity(array.len());
            for v in array.as_string::<i32>().iter() {
                b.append_option(v.and_then(|v| f(v.as_bytes())));
            }
            output(Arc::new(b.finish()), scalar)
        }),
    )
}

fn gt_dosage() -> ScalarUDF {
    create_udf(
        "gt_dosage",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args| {
            let (array, scalar) = strings(args)?;
            let mut b = Int32Builder::with_capacity(array.len());
            for v in array.as_string::<i32>().iter() {
                b.append_option(v.and_then(|v| dosage(v.as_bytes())));
            }
            output(Arc::new(b.finish()), scalar)
        }),
    )
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

/// Every scalar function of this crate.
pub fn all() -> Vec<ScalarUDF> {
    vec![
        gt_alleles(),
        bool_udf("gt_phased", phased),
        gt_dosage(),
        bool_udf("gt_is_het", is_het),
    ]
}

/// Registers every function of this crate in `ctx`.
pub fn register_all(ctx: &SessionContext) {
    for f in all() {
        ctx.register_udf(f);
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
