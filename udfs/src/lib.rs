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

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, Int32Builder, ListBuilder};
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
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let (body, leading_phase) = match text.strip_prefix('|') {
        Some(rest) => (rest, true),
        None => (text.strip_prefix('/').unwrap_or(text), false),
    };
    let mut alleles = Vec::new();
    let mut phased = true;
    let mut separators = 0;
    for (i, part) in body.split(['/', '|']).enumerate() {
        if i > 0 {
            separators += 1;
        }
        alleles.push(match part {
            "." => None,
            p => Some(p.parse::<i32>().ok()?),
        });
    }
    for c in body.chars() {
        if c == '/' {
            phased = false;
        }
    }
    if separators == 0 {
        phased = leading_phase;
    }
    Some(Genotype { alleles, phased })
}

fn strings(args: &[ColumnarValue]) -> Result<(ArrayRef, bool)> {
    let scalar = matches!(args[0], ColumnarValue::Scalar(_));
    let array = args[0].to_array(1)?;
    Ok((cast(&array, &DataType::Utf8)?, scalar))
}

fn output(array: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    if scalar {
        Ok(ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&array, 0)?))
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

fn bool_udf(name: &str, f: fn(&Genotype) -> Option<bool>) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Utf8],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(move |args| {
            let (array, scalar) = strings(args)?;
            let mut b = BooleanBuilder::with_capacity(array.len());
            for v in array.as_string::<i32>().iter() {
                b.append_option(v.and_then(parse_gt).and_then(|g| f(&g)));
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
                b.append_option(v.and_then(parse_gt).and_then(|g| dosage(&g)));
            }
            output(Arc::new(b.finish()), scalar)
        }),
    )
}

/// Non-reference called alleles; `None` when no allele is called.
pub fn dosage(g: &Genotype) -> Option<i32> {
    let called: Vec<i32> = g.alleles.iter().flatten().copied().collect();
    if called.is_empty() { None } else { Some(called.iter().filter(|&&a| a > 0).count() as i32) }
}

fn is_het(g: &Genotype) -> Option<bool> {
    let called: Vec<i32> = g.alleles.iter().flatten().copied().collect();
    let first = *called.first()?;
    Some(called.iter().any(|&a| a != first))
}

fn phased(g: &Genotype) -> Option<bool> {
    if g.alleles.iter().all(Option::is_none) { None } else { Some(g.phased) }
}

/// Every scalar function of this crate.
pub fn all() -> Vec<ScalarUDF> {
    vec![gt_alleles(), bool_udf("gt_phased", phased), gt_dosage(), bool_udf("gt_is_het", is_het)]
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
        assert_eq!(parse_gt("0|1"), Some(Genotype { alleles: vec![Some(0), Some(1)], phased: true }));
        assert_eq!(parse_gt("./."), Some(Genotype { alleles: vec![None, None], phased: false }));
        assert_eq!(parse_gt("1"), Some(Genotype { alleles: vec![Some(1)], phased: false }));
        assert_eq!(parse_gt("0/1|2").map(|g| g.phased), Some(false));
        assert_eq!(parse_gt("x/1"), None);
        assert_eq!(parse_gt(""), None);
    }

    #[test]
    fn dosage_and_het() {
        let g = |s| parse_gt(s).unwrap();
        assert_eq!(dosage(&g("0/1")), Some(1));
        assert_eq!(dosage(&g("1|2")), Some(2));
        assert_eq!(dosage(&g("./.")), None);
        assert_eq!(dosage(&g("0/.")), Some(0));
        assert_eq!(is_het(&g("0/1")), Some(true));
        assert_eq!(is_het(&g("1/1")), Some(false));
        assert_eq!(is_het(&g(".")), None);
        assert_eq!(phased(&g("./.")), None);
    }
}
