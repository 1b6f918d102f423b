//! A server table as a principal with a narrowing grant sees it: a view over the table that
//! keeps the allowed columns, reads masked columns as their mask expression (cast to the
//! column's type, so the table's schema stays as it was) and keeps only the rows of the row
//! filter. The principal's sessions register this view under the table's name, so every way
//! of reading it (joins, subqueries, views of the principal's own, prepared statements) reads
//! through it; the optimizer pushes the principal's own filters through the masks, so a filter
//! on a masked column compares the mask, never the hidden value.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::{Column, TableReference, plan_err};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlanBuilder, cast};

use super::rules::Restriction;

/// `table` (registered as `name`) narrowed by `restriction`; expressions are planned in
/// `state` (the session's functions and settings).
pub fn restricted_table(
    state: &SessionState,
    name: &str,
    table: Arc<dyn TableProvider>,
    restriction: &Restriction,
) -> Result<Arc<dyn TableProvider>> {
    let reference = TableReference::bare(name);
    let mut plan = LogicalPlanBuilder::scan(reference.clone(), provider_as_source(table), None)?;
    let schema = Arc::clone(plan.schema());
    if let Some(filter) = &restriction.row_filter {
        let predicate = state
            .create_logical_expr(filter, &schema)
            .map_err(|e| e.context(format!("table '{name}': row_filter {filter:?}")))?;
        plan = plan.filter(predicate)?;
    }
    let fields = schema.fields();
    if let Some(columns) = &restriction.columns {
        for c in columns {
            if !fields.iter().any(|f| f.name() == c) {
                return plan_err!(
                    "table '{name}': the grant's columns list '{c}', which the table does not have"
                );
            }
        }
    }
    for c in restriction.masks.keys() {
        if !fields.iter().any(|f| f.name() == c) {
            return plan_err!(
                "table '{name}': the grant masks '{c}', which the table does not have"
            );
        }
    }
    let mut exprs = Vec::new();
    for field in fields {
        let visible = restriction
            .columns
            .as_ref()
            .is_none_or(|cols| cols.iter().any(|c| c == field.name()));
        if !visible {
            continue;
        }
        let column = Expr::Column(Column::new(Some(reference.clone()), field.name()));
        let expr = match restriction.masks.get(field.name()) {
            Some(mask) => {
                let masked = state.create_logical_expr(mask, &schema).map_err(|e| {
                    e.context(format!(
                        "table '{name}': mask of '{}' {mask:?}",
                        field.name()
                    ))
                })?;
                let typed = if masked.get_type(&schema)? == *field.data_type() {
                    masked
                } else {
                    cast(masked, field.data_type().clone())
                };
                typed.alias(field.name())
            }
            None => column,
        };
        exprs.push(expr);
    }
    let plan = plan.project(exprs)?.build()?;
    let definition = format!("{name} as granted");
    Ok(Arc::new(ViewTable::new(plan, Some(definition))))
}
