//! A physical optimizer rule: scans feeding an aggregation need not keep file order.
//!
//! A VCF scan returns rows in file order by default: one output partition fed by parallel
//! readers. An aggregation that does not depend on the order of its input (`count`, `sum`,
//! `GROUP BY sample`, …) gains nothing from that order, but its partial aggregation then runs
//! on one partition, that is on one core. This rule gives such scans one partition per share of
//! their units (`vcf.preserve_order = false` for that scan only), so the partial aggregation
//! runs on every core; the final aggregation merges the partitions as it does for any
//! multi-partition input. Only chains of operators that keep partitions apart and do not care
//! about order (filters, projections) may stand between the aggregation and the scan.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;

use super::exec::VcfExec;

/// Gives order-insensitive aggregations unordered, multi-partition VCF scans.
#[derive(Debug, Default)]
pub struct ParallelAggregateScans;

/// Operators that may stand between an aggregation and a scan: they work partition by
/// partition and row by row.
const PASS_THROUGH: [&str; 4] = [
    "FilterExec",
    "ProjectionExec",
    "CoalesceBatchesExec",
    "CooperativeExec",
];

/// `plan` with its VCF scan unordered, when it is a scan under a chain of pass-through
/// operators.
fn unordered(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(scan) = plan.downcast_ref::<VcfExec>() {
        return Ok(scan
            .unordered()
            .map(|s| Arc::new(s) as Arc<dyn ExecutionPlan>));
    }
    if !PASS_THROUGH.contains(&plan.name()) {
        return Ok(None);
    }
    let children = plan.children();
    let [child] = children.as_slice() else {
        return Ok(None);
    };
    match unordered(child)? {
        Some(new) => Ok(Some(Arc::clone(plan).with_new_children(vec![new])?)),
        None => Ok(None),
    }
}

/// Aggregates whose result follows the order of their input even without ORDER BY.
const ORDER_DEPENDENT: [&str; 5] = [
    "first_value",
    "last_value",
    "nth_value",
    "array_agg",
    "string_agg",
];

/// Whether no aggregate of `agg` can see the order of its input: none has an ORDER BY, and
/// none is one whose result follows file order anyway (`first_value`, `array_agg`, …; UDAFs
/// say so by preferring an order). Plain aggregates (`count`, `sum`, …) keep DataFusion's
/// default sensitivity, which only speaks of their ORDER BY.
fn order_insensitive(agg: &AggregateExec) -> bool {
    agg.aggr_expr().iter().all(|e| {
        e.order_bys().is_empty()
            && !ORDER_DEPENDENT.contains(&e.fun().name())
            && !matches!(
                e.fun().order_sensitivity(),
                AggregateOrderSensitivity::SoftRequirement | AggregateOrderSensitivity::Beneficial
            )
    }) && agg.required_input_ordering().iter().all(Option::is_none)
}

impl PhysicalOptimizerRule for ParallelAggregateScans {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            let Some(agg) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if !order_insensitive(agg) {
                return Ok(Transformed::no(node));
            }
            match agg.mode() {
                AggregateMode::Partial => match unordered(agg.input())? {
                    Some(input) => Ok(Transformed::yes(node.with_new_children(vec![input])?)),
                    None => Ok(Transformed::no(node)),
                },
                AggregateMode::Single => {
                    // one aggregation over one partition: a partial one per partition, then a
                    // final one over all of them
                    let Some(input) = unordered(agg.input())? else {
                        return Ok(Transformed::no(node));
                    };
                    let partial = Arc::new(AggregateExec::try_new(
                        AggregateMode::Partial,
                        agg.group_expr().clone(),
                        agg.aggr_expr().to_vec(),
                        agg.filter_expr().to_vec(),
                        input,
                        agg.input_schema(),
                    )?);
                    let merged = Arc::new(CoalescePartitionsExec::new(partial));
                    let last = AggregateExec::try_new(
                        AggregateMode::Final,
                        agg.group_expr().as_final(),
                        agg.aggr_expr().to_vec(),
                        agg.filter_expr().to_vec(),
                        merged,
                        agg.input_schema(),
                    )?
                    .with_limit_options(agg.limit_options());
                    Ok(Transformed::yes(Arc::new(last) as Arc<dyn ExecutionPlan>))
                }
                _ => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "parallel_vcf_aggregate_scans"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
