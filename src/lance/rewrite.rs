//! The kNN rewrite: `SELECT … FROM t [WHERE …] ORDER BY cosine_distance(col, <vector>) LIMIT k`
//! (also `l2_distance`, and `inner_product … DESC`) over a Lance table whose column has a
//! vector index for that distance becomes a search through the index.
//!
//! The plan `Sort(fetch = k) ← [Projection | Coalesce | Repartition | Cooperative]* ← LanceScanExec` keeps
//! its sort and projections; only the scan is replaced, by a [`KnnExec`] returning the k
//! nearest rows (the scan's filters become the search's pre-filter, so k rows come back
//! whenever k match). The sort then orders those k rows by the distance function itself, so
//! the distances shown are the function's values, whatever Lance's own computation gives.
//! Without a matching index, or with `SET vector.use_index = false`, the plan is left alone:
//! an exact scan with a top-k heap.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use lance_linalg::distance::DistanceType;

use super::knn::{KnnExec, SearchSettings, constant_vector};
use super::table::LanceScanExec;
use crate::config::VectorConfig;

/// The physical optimizer rule (see the module docs).
#[derive(Debug, Default)]
pub struct VectorSearchRewrite;

impl PhysicalOptimizerRule for VectorSearchRewrite {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let settings = config
            .extensions
            .get::<VectorConfig>()
            .cloned()
            .unwrap_or_default();
        if !settings.use_index {
            return Ok(plan);
        }
        plan.transform_down(|node| {
            let Some(sort) = node.downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            match rewrite_sort(sort, &settings)? {
                Some(new) => Ok(Transformed::yes(new)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "vector_search_rewrite"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The distance a function name computes, and whether nearest is smallest.
pub fn distance_of(function: &str) -> Option<(DistanceType, bool)> {
    match function {
        "cosine_distance" => Some((DistanceType::Cosine, true)),
        "l2_distance" => Some((DistanceType::L2, true)),
        "inner_product" | "dot_product" => Some((DistanceType::Dot, false)),
        _ => None,
    }
}

/// `expr` with every column replaced by what `projection` computes for it.
fn through_projection(
    expr: &Arc<dyn PhysicalExpr>,
    projection: &ProjectionExec,
) -> Result<Arc<dyn PhysicalExpr>> {
    let exprs = projection.expr();
    Arc::clone(expr)
        .transform_up(|e| match e.downcast_ref::<Column>() {
            Some(c) => Ok(Transformed::yes(Arc::clone(&exprs[c.index()].expr))),
            None => Ok(Transformed::no(e)),
        })
        .map(|t| t.data)
}

fn rewrite_sort(
    sort: &SortExec,
    settings: &VectorConfig,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(k) = sort.fetch() else {
        return Ok(None);
    };
    let [order] = &sort.expr()[..] else {
        return Ok(None);
    };
    // down to the scan, through nodes that neither drop nor add rows
    let mut expr = Arc::clone(&order.expr);
    let mut node = Arc::clone(sort.input());
    let scan = loop {
        if let Some(p) = node.downcast_ref::<ProjectionExec>() {
            expr = through_projection(&expr, p)?;
            node = Arc::clone(p.input());
        } else if let Some(c) = node.downcast_ref::<CoalescePartitionsExec>() {
            if c.fetch().is_some() {
                return Ok(None);
            }
            node = Arc::clone(c.input());
        } else if let Some(r) = node.downcast_ref::<RepartitionExec>() {
            node = Arc::clone(r.input());
        } else if let Some(c) = node.downcast_ref::<CooperativeExec>() {
            node = Arc::clone(c.input());
        } else if let Some(scan) = node.downcast_ref::<LanceScanExec>() {
            break scan;
        } else {
            return Ok(None);
        }
    };
    if scan.limit.is_some() {
        return Ok(None);
    }
    let Some(function) = expr.downcast_ref::<ScalarFunctionExpr>() else {
        return Ok(None);
    };
    let Some((metric, ascending)) = distance_of(function.fun().name()) else {
        return Ok(None);
    };
    if order.options.descending == ascending {
        // farthest first: not a nearest-neighbour query
        return Ok(None);
    }
    let [a, b] = function.args() else {
        return Ok(None);
    };
    let (column, constant) = match (a.downcast_ref::<Column>(), b.downcast_ref::<Column>()) {
        (Some(c), None) => (c, b),
        (None, Some(c)) => (c, a),
        _ => return Ok(None),
    };
    if !datafusion::physical_expr::utils::collect_columns(constant).is_empty() {
        return Ok(None);
    }
    let Some(column_name) = scan.columns.get(column.index()) else {
        return Ok(None);
    };
    let Some(index) = scan
        .indexes
        .iter()
        .find(|i| &i.column == column_name && i.metric == Some(metric))
    else {
        return Ok(None);
    };
    // a NULL query, or one of another length, is left to the function (NULLs, or its error)
    let Some(query) = constant_vector(constant)? else {
        return Ok(None);
    };
    let dim = scan
        .dataset
        .schema()
        .field(column_name)
        .and_then(|f| match f.data_type() {
            datafusion::arrow::datatypes::DataType::FixedSizeList(_, n) => Some(n as usize),
            _ => None,
        });
    if dim != Some(query.len()) {
        return Ok(None);
    }
    let knn: Arc<dyn ExecutionPlan> = Arc::new(KnnExec::new(
        scan.location.clone(),
        Arc::clone(&scan.dataset),
        scan.columns.clone(),
        scan.filters.clone(),
        query,
        SearchSettings {
            column: column_name.clone(),
            metric,
            k,
            index: Some(index.name.clone()),
            segments: index.segments.clone(),
            named: scan
                .indexes
                .iter()
                .filter(|i| &i.column == column_name)
                .count()
                > 1,
            nprobes: (settings.nprobes > 0).then_some(settings.nprobes),
            refine_factor: (settings.refine_factor > 0).then_some(settings.refine_factor),
        },
        scan.schema(),
    ));
    let scan_ptr = scan as *const LanceScanExec;
    let input = Arc::clone(sort.input())
        .transform_up(|n| {
            let is_scan = n
                .downcast_ref::<LanceScanExec>()
                .is_some_and(|s| std::ptr::eq(s, scan_ptr));
            Ok(if is_scan {
                Transformed::yes(Arc::clone(&knn))
            } else {
                Transformed::no(n)
            })
        })?
        .data;
    // the sort now sees one partition: it sorts the k rows as before
    let new_sort = SortExec::new(sort.expr().clone(), input)
        .with_fetch(Some(k))
        .with_preserve_partitioning(sort.preserve_partitioning());
    Ok(Some(Arc::new(new_sort)))
}
