//! Prepared-statement parameters: `?` placeholders (what JDBC and ADBC clients write) become
//! DataFusion's `$1, $2, …`; bound Arrow batches become one list of values per row.

use std::collections::HashMap;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::LogicalPlan;

/// Rewrites each `?` outside string literals, quoted identifiers and comments as `$n`,
/// numbered from 1 in order. Text without `?` placeholders is returned unchanged.
pub fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                // a doubled quote inside is an escaped quote; the loop sees it as close+open
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                let mut prev = ' ';
                for d in chars.by_ref() {
                    out.push(d);
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            '?' => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// Each row of the bound batches as a list of values.
pub fn rows_of(batches: &[RecordBatch]) -> Result<Vec<Vec<ScalarValue>>> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|column| ScalarValue::try_from_array(column, row))
                .collect::<Result<Vec<_>>>()?;
            rows.push(values);
        }
    }
    Ok(rows)
}

/// The plan's placeholders `$1…$n` in order with their inferred types (NULL type when unknown).
pub fn parameter_schema(plan: &LogicalPlan) -> Result<Schema> {
    let types = plan.get_parameter_types()?;
    let mut named: Vec<(usize, String, Option<DataType>)> = types
        .into_iter()
        .map(|(name, t)| {
            let index = name
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(usize::MAX);
            (index, name, t)
        })
        .collect();
    named.sort();
    Ok(Schema::new(
        named
            .into_iter()
            .map(|(_, name, t)| Field::new(name, t.unwrap_or(DataType::Null), true))
            .collect::<Vec<_>>(),
    ))
}

/// `plan` with one row of bound values put in for its placeholders, each value cast to the
/// type the plan expects there (clients send Int64 for an Int32 column, Utf8 for Utf8View…).
pub fn bind(plan: &LogicalPlan, row: &[ScalarValue]) -> Result<LogicalPlan> {
    let types: HashMap<String, Option<DataType>> = plan.get_parameter_types()?;
    if types.len() != row.len() {
        return Err(DataFusionError::Plan(format!(
            "the statement has {} parameter(s) but {} value(s) were bound",
            types.len(),
            row.len()
        )));
    }
    let mut values = Vec::with_capacity(row.len());
    for (i, value) in row.iter().enumerate() {
        let expected = types.get(&format!("${}", i + 1)).cloned().flatten();
        let value = match expected {
            Some(t) if t != value.data_type() && !value.is_null() => {
                value.cast_to(&t).map_err(|e| {
                    DataFusionError::Plan(format!(
                        "parameter ${}: cannot use {} value {value} as {t}: {e}",
                        i + 1,
                        value.data_type()
                    ))
                })?
            }
            Some(t) if value.is_null() => ScalarValue::try_from(&t)?,
            _ => value.clone(),
        };
        values.push(value);
    }
    plan.clone().with_param_values(ParamValues::from(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_marks_are_numbered_outside_quotes_and_comments() {
        assert_eq!(
            number_placeholders(
                "SELECT * FROM t WHERE a = ? AND b = '?' AND \"c?\" = ? -- ?\n/* ? */ OR d = ?"
            ),
            "SELECT * FROM t WHERE a = $1 AND b = '?' AND \"c?\" = $2 -- ?\n/* ? */ OR d = $3"
        );
        assert_eq!(
            number_placeholders("SELECT 'it''s ?', ?"),
            "SELECT 'it''s ?', $1"
        );
        assert_eq!(number_placeholders("SELECT $1"), "SELECT $1");
    }

    #[tokio::test]
    async fn binding_casts_values_to_the_placeholder_types() {
        let ctx = crate::SessionBuilder::new().build().unwrap();
        let plan = ctx
            .state()
            .create_logical_plan("SELECT a FROM (SELECT CAST(column1 AS INT) AS a FROM (VALUES (1), (2), (3))) WHERE a > $1")
            .await
            .unwrap();
        let schema = parameter_schema(&plan).unwrap();
        assert_eq!(schema.field(0).name(), "$1");
        assert_eq!(schema.field(0).data_type(), &DataType::Int32);
        let bound = bind(&plan, &[ScalarValue::Int64(Some(1))]).unwrap();
        let rows = ctx
            .execute_logical_plan(bound)
            .await
            .unwrap()
            .count()
            .await
            .unwrap();
        assert_eq!(rows, 2);
        let err = bind(&plan, &[]).unwrap_err().to_string();
        assert!(err.contains("1 parameter(s) but 0"), "{err}");
    }
}
