//! Array literals of numbers planned as one constant.
//!
//! A query vector is written as an array literal, `[0.0123, -0.0456, …]` with hundreds of
//! numbers. DataFusion plans `[…]` as `make_array(…)` with one argument per number, and every
//! later step (type coercion, simplification, the column names built from the expression)
//! walks and prints those arguments again: 4.5 ms of planning for 384 numbers (release build),
//! a sixth of a kNN search through an index. [`NumberArrayLiterals`] plans
//! an array whose elements are all number literals as the constant `make_array` would fold
//! to (a `List` of `Int64` when every number is an integer, of `Float64` otherwise: the same
//! type, nullability and values), and leaves every other array to DataFusion.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult};

/// Plans `[n, n, …]` of number literals as one `List` constant (see the module docs).
/// Registered before DataFusion's own planners, which plan the rest.
#[derive(Debug, Default)]
pub struct NumberArrayLiterals;

impl ExprPlanner for NumberArrayLiterals {
    fn plan_array_literal(
        &self,
        exprs: Vec<Expr>,
        _schema: &DFSchema,
    ) -> Result<PlannerResult<Vec<Expr>>> {
        match number_list(&exprs) {
            Some(list) => Ok(PlannerResult::Planned(Expr::Literal(list, None))),
            None => Ok(PlannerResult::Original(exprs)),
        }
    }
}

/// The `List` constant of `exprs` when all are non-NULL `Int64`/`Float64` literals (integers
/// widened to `Float64` when any number is not an integer, as `make_array` coerces them).
fn number_list(exprs: &[Expr]) -> Option<ScalarValue> {
    if exprs.is_empty() {
        return None;
    }
    let mut all_integers = true;
    for e in exprs {
        match e {
            Expr::Literal(ScalarValue::Int64(Some(_)), None) => {}
            Expr::Literal(ScalarValue::Float64(Some(_)), None) => all_integers = false,
            _ => return None,
        }
    }
    let values: Vec<ScalarValue> = exprs
        .iter()
        .map(|e| match e {
            Expr::Literal(ScalarValue::Int64(Some(i)), _) if !all_integers => {
                ScalarValue::Float64(Some(*i as f64))
            }
            Expr::Literal(v, _) => v.clone(),
            _ => unreachable!("checked above"),
        })
        .collect();
    let element = if all_integers {
        DataType::Int64
    } else {
        DataType::Float64
    };
    Some(ScalarValue::List(ScalarValue::new_list_nullable(
        &values, &element,
    )))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Float64Type, Int64Type};
    use datafusion::logical_expr::lit;

    use super::*;

    #[test]
    fn numbers_become_one_list() {
        let ints = number_list(&[lit(1i64), lit(-2i64)]).unwrap();
        let ScalarValue::List(a) = &ints else {
            panic!("{ints:?}")
        };
        assert_eq!(a.value_type(), DataType::Int64);
        assert_eq!(a.value(0).as_primitive::<Int64Type>().values(), &[1, -2]);
        let mixed = number_list(&[lit(1i64), lit(2.5f64)]).unwrap();
        let ScalarValue::List(a) = &mixed else {
            panic!("{mixed:?}")
        };
        assert_eq!(
            a.value(0).as_primitive::<Float64Type>().values(),
            &[1.0, 2.5]
        );
        // anything else is left to make_array
        assert!(number_list(&[]).is_none());
        assert!(number_list(&[lit(1i64), lit(ScalarValue::Int64(None))]).is_none());
        assert!(number_list(&[lit(1i64), lit("a")]).is_none());
        assert!(number_list(&[lit(1i32)]).is_none());
    }
}
