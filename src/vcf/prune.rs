//! An optimizer rule that decodes only the INFO fields a query names.
//!
//! DataFusion pushes whole columns into scans; `info` is one struct column with a field per
//! `##INFO` line, so `WHERE info.AF[1] > 0.1` would decode every INFO value of every record.
//! When every use of `info` in a plan is a field access (`info.AF`, `info['DP']`), this rule
//! gives the VCF scans a narrower `info` struct holding only those fields; the rest of the
//! INFO column is then skipped while parsing.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::{Expr, LogicalPlan, TableScan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::schema::WIDE_CORE;
use super::table::VcfTable;

const INFO: &str = WIDE_CORE[7];

/// Which INFO fields a plan reads.
#[derive(Debug, Default)]
struct Usage {
    keys: BTreeSet<String>,
    whole: bool,
}

impl Usage {
    fn visit(&mut self, expr: &Expr) {
        let _ = expr.apply(|e| {
            if let Expr::ScalarFunction(f) = e
                && f.func.name() == "get_field"
                && let [
                    Expr::Column(c),
                    Expr::Literal(
                        ScalarValue::Utf8(Some(key)) | ScalarValue::Utf8View(Some(key)),
                        _,
                    ),
                    ..,
                ] = f.args.as_slice()
                && c.name == INFO
            {
                self.keys.insert(key.clone());
                return Ok(TreeNodeRecursion::Jump);
            }
            if let Expr::Column(c) = e
                && c.name == INFO
            {
                self.whole = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
}

fn schema_has_info(plan: &LogicalPlan) -> bool {
    plan.schema().fields().iter().any(|f| f.name() == INFO)
}

/// Narrows the `info` column of VCF scans to the INFO fields the query accesses.
#[derive(Debug, Default)]
pub struct PruneInfoFields;

fn vcf_table(scan: &TableScan) -> Option<Arc<dyn TableProvider>> {
    let provider = source_as_provider(&scan.source).ok()?;
    let any: &dyn std::any::Any = provider.as_ref();
    any.is::<VcfTable>().then_some(provider)
}

impl OptimizerRule for PruneInfoFields {
    fn name(&self) -> &str {
        "prune_vcf_info_fields"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let mut usage = Usage::default();
        let mut has_vcf = false;
        // the query's result uses every column it holds
        usage.whole = schema_has_info(&plan);
        plan.apply_with_subqueries(|node| {
            match node {
                LogicalPlan::TableScan(scan) => has_vcf |= vcf_table(scan).is_some(),
                // nodes that use their input's columns only through their expressions (or pass
                // them on to a node that does)
                LogicalPlan::Projection(_)
                | LogicalPlan::Aggregate(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::Sort(_)
                | LogicalPlan::Limit(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Repartition(_)
                | LogicalPlan::Join(_)
                | LogicalPlan::Union(_)
                | LogicalPlan::Window(_) => {
                    for e in node.expressions() {
                        usage.visit(&e);
                    }
                }
                // anything else (DISTINCT, CREATE TABLE AS, INSERT, COPY, UNNEST, …) may use
                // every column of its input
                _ => {
                    for e in node.expressions() {
                        usage.visit(&e);
                    }
                    usage.whole |= node.inputs().iter().any(|i| schema_has_info(i));
                }
            }
            Ok(if usage.whole {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })?;
        if usage.whole || !has_vcf {
            return Ok(Transformed::no(plan));
        }
        let keys: Vec<String> = usage.keys.into_iter().collect();
        let mut changed = false;
        let plan = plan
            .transform_up_with_subqueries(|node| {
                if let LogicalPlan::TableScan(scan) = &node
                    && let Some(provider) = vcf_table(scan)
                {
                    let any: &dyn std::any::Any = provider.as_ref();
                    if let Some(table) = any.downcast_ref::<VcfTable>()
                        && let Some(narrow) = table.with_info_fields(&keys)
                    {
                        changed = true;
                        let source = provider_as_source(Arc::new(narrow));
                        let new = TableScan::try_new(
                            scan.table_name.clone(),
                            source,
                            scan.projection.clone(),
                            scan.filters.clone(),
                            scan.fetch,
                        )?;
                        return Ok(Transformed::yes(LogicalPlan::TableScan(new)));
                    }
                }
                // schemas above a narrowed scan carry its new `info` type
                if changed {
                    node.recompute_schema().map(Transformed::yes)
                } else {
                    Ok(Transformed::no(node))
                }
            })?
            .data;
        Ok(if changed {
            Transformed::yes(plan)
        } else {
            Transformed::no(plan)
        })
    }
}
