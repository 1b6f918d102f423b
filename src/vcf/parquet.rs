//! Parquet row groups sized for genotype rows.
//!
//! DataFusion writes Parquet row groups of `max_row_group_size` rows (a million by default) and
//! holds a row group in memory until it is complete. A VCF row with a `genotypes` list carries
//! one entry per sample, so a million rows of a 2,504-sample file would be billions of values.
//! This physical optimizer rule caps the row group of a Parquet write fed by such a scan at
//! about [`CELLS_PER_ROW_GROUP`] genotype entries, keeping `COPY … TO '….parquet'` in bounded
//! memory whatever the cohort size.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::file_format::parquet::ParquetSink;
use datafusion::datasource::physical_plan::FileSink;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use super::exec::VcfExec;

/// Genotype entries (rows × samples) per Parquet row group, at most.
pub const CELLS_PER_ROW_GROUP: usize = 1 << 17;

/// Caps the Parquet row group size of writes whose rows hold per-sample lists.
#[derive(Debug, Default)]
pub struct BoundParquetRowGroups;

/// The most genotype entries per row among the VCF scans under `plan` (1 when none).
fn cells_per_row(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let mut cells = 1;
    let _ = plan.apply(|node| {
        if let Some(scan) = node.downcast_ref::<VcfExec>() {
            cells = cells.max(scan.cells_per_row());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    cells
}

impl PhysicalOptimizerRule for BoundParquetRowGroups {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            let Some(exec) = node.downcast_ref::<DataSinkExec>() else {
                return Ok(Transformed::no(node));
            };
            let any: &dyn std::any::Any = exec.sink();
            let Some(sink) = any.downcast_ref::<ParquetSink>() else {
                return Ok(Transformed::no(node));
            };
            let cells = cells_per_row(exec.input());
            let rows = (CELLS_PER_ROW_GROUP / cells).max(16);
            let mut options = sink.parquet_options().clone();
            if cells <= 1
                || exec.sort_order().is_some()
                || options.global.max_row_group_size <= rows
            {
                return Ok(Transformed::no(node));
            }
            options.global.max_row_group_size = rows;
            let sink = ParquetSink::new(sink.config().clone(), options);
            let new = DataSinkExec::new(Arc::clone(exec.input()), Arc::new(sink), None);
            Ok(Transformed::new(
                Arc::new(new) as Arc<dyn ExecutionPlan>,
                true,
                TreeNodeRecursion::Jump,
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "bound_parquet_row_groups_for_genotypes"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
