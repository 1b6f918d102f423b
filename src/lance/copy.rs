//! `COPY (SELECT …) TO 'dir' STORED AS LANCE [OPTIONS ('mode' 'overwrite'|'append'|'create')]`
//! (also `COPY t TO 'dir.lance'`): planned as an insert into the dataset at `dir`, so the rows
//! stream into it and the statement returns the number written, as COPY does.

use std::sync::Arc;

use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::CopyToStatement;
use datafusion::sql::sqlparser::ast;

use super::dataset_uri;
use super::sink::{WriteKind, write_plan};
use crate::copy_target::CopyTarget;

/// Whether a COPY writes a Lance dataset: `STORED AS LANCE`, or a target ending in `.lance`
/// without `STORED AS`.
pub fn is_lance_copy(copy: &CopyToStatement) -> bool {
    match &copy.stored_as {
        Some(format) => format.eq_ignore_ascii_case("lance"),
        None => copy.target.trim_end_matches('/').ends_with(".lance"),
    }
}

/// How `COPY … STORED AS LANCE` meets a dataset already at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyMode {
    /// A new version with only the copied rows (the default, as COPY replaces a file).
    Overwrite,
    /// The rows added to the dataset there.
    Append,
    /// Fails if there is a dataset there.
    Create,
}

/// Plans a Lance COPY as an insert of `input` (its query, planned) into the target dataset.
pub async fn plan_copy(copy: CopyToStatement, input: LogicalPlan) -> Result<LogicalPlan> {
    if !copy.partitioned_by.is_empty() {
        return plan_err!("COPY … STORED AS LANCE takes no PARTITIONED BY");
    }
    let mut mode = CopyMode::Overwrite;
    for (key, value) in &copy.options {
        let value = match value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        };
        match (
            key.to_ascii_lowercase().as_str(),
            value.to_ascii_lowercase().as_str(),
        ) {
            ("mode", "overwrite") => mode = CopyMode::Overwrite,
            ("mode", "append") => mode = CopyMode::Append,
            ("mode", "create") => mode = CopyMode::Create,
            ("mode", other) => {
                return plan_err!(
                    "COPY … STORED AS LANCE: mode must be 'overwrite', 'append' or 'create', not '{other}'"
                );
            }
            (other, _) => {
                return plan_err!("COPY … STORED AS LANCE: unknown option '{other}' (known: mode)");
            }
        }
    }
    let location = dataset_uri(&copy.target);
    let exists = super::open_dataset(&location).await.is_ok();
    let kind = match (mode, exists) {
        (CopyMode::Create, true) => {
            return plan_err!(
                "COPY … STORED AS LANCE: there is a dataset at '{}' already (mode 'create')",
                copy.target
            );
        }
        (CopyMode::Append, true) => WriteKind::Append,
        _ => WriteKind::Overwrite,
    };
    let schema = Arc::new(input.schema().as_arrow().clone());
    let target = CopyTarget::new(Arc::clone(&schema), move |input| {
        write_plan(input, location.clone(), kind, Arc::clone(&schema))
    });
    Ok(target.insert(&copy.target, input))
}
