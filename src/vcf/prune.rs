//! Optimizer rules that decode only the INFO and FORMAT fields a query names.
//!
//! DataFusion pushes whole columns into scans; `info` is one struct column with a field per
//! `##INFO` line, so `WHERE info.AF[1] > 0.1` would decode every INFO value of every record.
//! When every use of `info` in a plan is a field access (`info.AF`, `info['DP']`),
//! [`PruneInfoFields`] gives the VCF scans a narrower `info` struct holding only those fields;
//! the rest of the INFO column is then skipped while parsing. [`PruneGenotypeFields`] does the
//! same for the FORMAT fields in `genotypes`, whose uses are `genotypes[i].GT`, the fields of
//! `unnest(genotypes)`, and `cardinality(genotypes)` (which needs none).

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::{Expr, LogicalPlan, TableScan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::schema::{GENOTYPES, WIDE_CORE};
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

fn schema_has(plan: &LogicalPlan, column: &str) -> bool {
    plan.schema().fields().iter().any(|f| f.name() == column)
}

/// The text of a string literal argument.
fn key_of(e: &Expr) -> Option<&String> {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(key)) | ScalarValue::Utf8View(Some(key)), _) => {
            Some(key)
        }
        _ => None,
    }
}

/// A column standing for `genotypes` around `unnest(genotypes)`:
/// `__unnest_placeholder(t.genotypes)` and `__unnest_placeholder(t.genotypes,depth=1)`.
fn is_unnested_genotypes(name: &str) -> bool {
    let Some(inner) = name
        .strip_prefix("__unnest_placeholder(")
        .and_then(|n| n.strip_suffix(')'))
    else {
        return false;
    };
    let column = inner.split_once(",depth=").map_or(inner, |(c, _)| c);
    column == GENOTYPES || column.ends_with(&format!(".{GENOTYPES}"))
}

impl Usage {
    /// Counts the uses of `genotypes` in `expr`.
    fn visit_genotypes(&mut self, expr: &Expr) {
        let _ = expr.apply(|e| {
            if let Expr::ScalarFunction(f) = e {
                let name = f.func.name();
                if name == "get_field"
                    && let [inner, key, ..] = f.args.as_slice()
                    && let Some(key) = key_of(key)
                {
                    // genotypes[i].GT
                    if let Expr::ScalarFunction(g) = inner
                        && g.func.name() == "array_element"
                        && let [Expr::Column(c), index] = g.args.as_slice()
                        && c.name == GENOTYPES
                    {
                        self.keys.insert(key.clone());
                        self.visit_genotypes(index);
                        return Ok(TreeNodeRecursion::Jump);
                    }
                    // unnest(genotypes).GT
                    if let Expr::Column(c) = inner
                        && is_unnested_genotypes(&c.name)
                    {
                        self.keys.insert(key.clone());
                        return Ok(TreeNodeRecursion::Jump);
                    }
                }
                // the number of entries needs no field
                if matches!(name, "cardinality" | "array_length")
                    && let [Expr::Column(c)] = f.args.as_slice()
                    && c.name == GENOTYPES
                {
                    return Ok(TreeNodeRecursion::Jump);
                }
            }
            // the input of an unnest: its fields are counted where the unnested column is used
            if let Expr::Alias(a) = e
                && let Expr::Column(c) = a.expr.as_ref()
                && c.name == GENOTYPES
                && is_unnested_genotypes(&a.name)
            {
                return Ok(TreeNodeRecursion::Jump);
            }
            if let Expr::Column(c) = e
                && (c.name == GENOTYPES || is_unnested_genotypes(&c.name))
            {
                self.whole = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
}

/// How a plan uses the struct column `column`, as `visit` counts the uses in one expression;
/// whether the plan reads a VCF table at all.
fn usage_of(
    plan: &LogicalPlan,
    column: &str,
    visit: fn(&mut Usage, &Expr),
) -> Result<(Usage, bool)> {
    let mut usage = Usage::default();
    let mut has_vcf = false;
    // the query's result uses every column it holds
    usage.whole = schema_has(plan, column);
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                has_vcf |= vcf_table(scan).is_some();
                // filters pushed into a scan use its columns too
                for f in &scan.filters {
                    visit(&mut usage, f);
                }
            }
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
                    visit(&mut usage, &e);
                }
            }
            // an unnest names the columns it unnests (their uses are counted above it) and
            // passes the others on whole
            LogicalPlan::Unnest(_) => {
                usage.whole |= node.inputs().iter().any(|i| schema_has(i, column));
            }
            // anything else (DISTINCT, CREATE TABLE AS, INSERT, COPY, …) may use every column
            // of its input
            _ => {
                for e in node.expressions() {
                    visit(&mut usage, &e);
                }
                usage.whole |= node.inputs().iter().any(|i| schema_has(i, column));
            }
        }
        Ok(if usage.whole {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    Ok((usage, has_vcf))
}

/// `plan` with each VCF scan's table replaced by what `narrow` makes of it (`None`: as is),
/// and the schemas above recomputed.
fn narrow_scans(
    plan: LogicalPlan,
    narrow: impl Fn(&VcfTable) -> Option<VcfTable>,
) -> Result<Transformed<LogicalPlan>> {
    let mut changed = false;
    let plan = plan
        .transform_up_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = &node
                && let Some(provider) = vcf_table(scan)
            {
                let any: &dyn std::any::Any = provider.as_ref();
                if let Some(table) = any.downcast_ref::<VcfTable>()
                    && let Some(narrow) = narrow(table)
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
            // schemas above a narrowed scan carry its new struct type
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
        let (usage, has_vcf) = usage_of(&plan, INFO, Usage::visit)?;
        if usage.whole || !has_vcf {
            return Ok(Transformed::no(plan));
        }
        let keys: Vec<String> = usage.keys.into_iter().collect();
        narrow_scans(plan, |t| t.with_info_fields(&keys))
    }
}

/// Narrows the `genotypes` column of VCF scans to the FORMAT fields the query accesses.
#[derive(Debug, Default)]
pub struct PruneGenotypeFields;

impl OptimizerRule for PruneGenotypeFields {
    fn name(&self) -> &str {
        "prune_vcf_genotype_fields"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let (usage, has_vcf) = usage_of(&plan, GENOTYPES, Usage::visit_genotypes)?;
        if usage.whole || !has_vcf {
            return Ok(Transformed::no(plan));
        }
        let keys: Vec<String> = usage.keys.into_iter().collect();
        narrow_scans(plan, |t| t.with_genotype_fields(&keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnest_placeholders_of_genotypes() {
        assert!(is_unnested_genotypes("__unnest_placeholder(genotypes)"));
        assert!(is_unnested_genotypes(
            "__unnest_placeholder(/d/a.vcf.genotypes,depth=1)"
        ));
        assert!(!is_unnested_genotypes(
            "__unnest_placeholder(/d/genotypes.vcf.alt)"
        ));
        assert!(!is_unnested_genotypes("genotypes"));
    }
}
