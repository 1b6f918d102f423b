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

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;

use super::DatasetVersion;
use super::knn::{KnnExec, SearchSettings, constant_vector, distance_of};
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
            match rewrite_sort(&node, sort, &settings)? {
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

/// `node` (`sort`) with the Lance scan under it replaced by a search, when it is a kNN query.
fn rewrite_sort(
    node: &Arc<dyn ExecutionPlan>,
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
    let mut child = Arc::clone(sort.input());
    let scan = loop {
        if let Some(p) = child.downcast_ref::<ProjectionExec>() {
            expr = p.projection_expr().unproject_expr(&expr)?;
            child = Arc::clone(p.input());
        } else if let Some(c) = child.downcast_ref::<CoalescePartitionsExec>() {
            if c.fetch().is_some() {
                return Ok(None);
            }
            child = Arc::clone(c.input());
        } else if let Some(r) = child.downcast_ref::<RepartitionExec>() {
            child = Arc::clone(r.input());
        } else if let Some(c) = child.downcast_ref::<CooperativeExec>() {
            child = Arc::clone(c.input());
        } else if let Some(scan) = child.downcast_ref::<LanceScanExec>() {
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
    let search = SearchSettings::new(column_name, metric, k, &scan.indexes, settings, None, None);
    if search.index.is_none() {
        return Ok(None);
    }
    // a NULL query, or one of another length, is left to the function (NULLs, or its error)
    let Some(query) = constant_vector(constant)? else {
        return Ok(None);
    };
    let schema = scan.schema();
    let dim = match schema.field(column.index()).data_type() {
        DataType::FixedSizeList(_, n) => Some(*n as usize),
        _ => None,
    };
    if dim != Some(query.len()) {
        return Ok(None);
    }
    let knn: Arc<dyn ExecutionPlan> = Arc::new(KnnExec::new(
        scan.location.clone(),
        DatasetVersion::Opened(Arc::clone(&scan.dataset)),
        scan.columns.clone(),
        scan.filters.clone(),
        query,
        search,
        schema,
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
    // the same sort over the search's k rows
    Ok(Some(Arc::clone(node).with_new_children(vec![input])?))
}
