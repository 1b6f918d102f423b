//! `VcfExec`, the physical scan of VCF/BCF files (the "source"): one partition per file.
//!
//! It holds only serialisable state (paths, decode plan, region, limit), so it can later be
//! shipped to another executor (DESIGN.md §5).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};

use super::batch::DecodePlan;
use super::opener::VcfOpener;
use super::region::Region;

/// Scans VCF/BCF files, one partition per file.
#[derive(Debug)]
pub struct VcfExec {
    files: Vec<PathBuf>,
    opener: VcfOpener,
    properties: Arc<PlanProperties>,
}

impl VcfExec {
    /// A scan of `files` decoding `plan`.
    pub fn new(
        files: Vec<PathBuf>,
        plan: Arc<DecodePlan>,
        region: Option<Region>,
        limit: Option<usize>,
        skip_errors: bool,
        target_partitions: usize,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&plan.schema)),
            Partitioning::UnknownPartitioning(files.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        // one file: decode its BGZF blocks on every core; several files: one core each
        let bgzf_threads = if files.len() == 1 { target_partitions.max(1) } else { 1 };
        let opener = VcfOpener { plan, region, limit, skip_errors, batch_size: 8192, bgzf_threads };
        VcfExec { files, opener, properties }
    }
}

impl DisplayAs for VcfExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
        let cols: Vec<&str> = self.opener.plan.schema.fields().iter().map(|f| f.name().as_str()).collect();
        write!(f, "VcfExec: files=[{}], projection=[{}]", names.join(", "), cols.join(", "))?;
        if self.opener.plan.needs_samples() || self.opener.plan.layout == super::schema::Layout::Long {
            write!(f, ", samples={}/{}", self.opener.plan.selected.len(), self.opener.plan.sample_names.len())?;
        }
        if let Some(r) = &self.opener.region {
            write!(f, ", region={r}")?;
        }
        if let Some(l) = self.opener.limit {
            write!(f, ", limit={l}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for VcfExec {
    fn name(&self) -> &str {
        "VcfExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let Some(path) = self.files.get(partition) else {
            return datafusion::common::internal_err!("VcfExec has no partition {partition}");
        };
        let mut opener = self.opener.clone();
        opener.batch_size = context.session_config().batch_size();
        Ok(opener.open(path.clone()))
    }
}
