//! `VcfExec`, the physical scan of VCF/BCF files (the "source").
//!
//! It holds only serialisable state (paths, byte ranges, index chunks, decode plan, regions, limit), so it can later be
//! shipped to another executor (DESIGN.md §5).

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

use super::batch::{ColumnKind, DecodePlan};
use super::opener::{FileRange, ScanFilter, ScanProgress, VcfOpener, unit_bytes};
use super::partition::ScanLayout;
use super::region::Region;
use super::schema::Layout;
use super::warnings::ScanReport;

/// Scans VCF/BCF files. In file order (the default), one output partition is fed by several
/// reader threads in unit order; otherwise each partition reads its share of the units.
#[derive(Debug)]
pub struct VcfExec {
    layout: ScanLayout,
    partitions: Vec<Vec<FileRange>>,
    readers: usize,
    opener: VcfOpener,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    /// The warnings report of the partitions running now (shared, so that a file read by
    /// several partitions is reported once).
    report: Mutex<Weak<ScanReport>>,
    options: ScanOptions,
    /// What the scan was planned from, for planning it again in another process.
    origin: Option<Arc<ScanOrigin>>,
}

/// What a scan was planned from: the table (files, options, the INFO and FORMAT fields it
/// decodes) and the choices its planning made. A cluster's executor opens the same files by
/// the same paths and plans the same scan from it ([`crate::cluster`]).
#[derive(Debug, Clone)]
pub struct ScanOrigin {
    /// The files of the table, in table order.
    pub files: Vec<std::path::PathBuf>,
    /// The table's options.
    pub table: super::options::VcfOptions,
    /// The INFO fields of the table's `info` struct (narrowed to those a query reads).
    pub infos: Vec<String>,
    /// The FORMAT fields of the table's `genotypes` struct (likewise).
    pub formats: Vec<String>,
    /// What each file was when the table opened it.
    pub stamps: Vec<crate::stamp::FileStamp>,
    /// What the planning chose.
    pub spec: ScanSpec,
}

/// The choices planning a scan made, by position in the table: its columns, samples,
/// regions and the filter the readers evaluate.
#[derive(Debug, Clone)]
pub struct ScanSpec {
    /// The table's columns decoded: the output ones, then those only the filter reads.
    pub indices: Vec<usize>,
    /// How many of `indices` are output.
    pub outputs: usize,
    /// Indices (in the header) of the samples read.
    pub selected: Vec<usize>,
    /// Only records overlapping these (all when `None`).
    pub regions: Option<Vec<Region>>,
    /// The filter the readers evaluate, over the decoded columns.
    pub predicate: Option<Arc<dyn datafusion::physical_plan::PhysicalExpr>>,
    /// Bytes per unit of a split file (`vcf.min_split_bytes`).
    pub min_split_bytes: u64,
}

/// How a scan runs: its readers, limit and error handling.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// Stop after this many rows.
    pub limit: Option<usize>,
    /// Skip (and count) unreadable lines.
    pub skip_errors: bool,
    /// Threads (and, when order does not matter, partitions).
    pub threads: usize,
    /// Keep the records in file order.
    pub preserve_order: bool,
    /// At most this many partitions when order need not be kept.
    pub partitions: usize,
}

impl VcfExec {
    /// A scan of the units of `layout`, decoding `plan`, keeping records that overlap
    /// `regions` (all when empty).
    pub fn new(
        layout: ScanLayout,
        plan: Arc<DecodePlan>,
        regions: Vec<Region>,
        options: ScanOptions,
        filter: Option<ScanFilter>,
    ) -> Self {
        let threads = options.threads.max(1);
        let (partitions, readers) = if options.preserve_order {
            (
                vec![layout.units.clone()],
                threads.min(layout.units.len().max(1)),
            )
        } else {
            (layout.partitions(options.partitions.max(1)), 1)
        };
        let output = match &filter {
            Some(f) => Arc::clone(&f.schema),
            None => Arc::clone(&plan.schema),
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(output),
            Partitioning::UnknownPartitioning(partitions.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        // a single unit read by a single reader: decode its BGZF blocks on every core
        let single = partitions.len() == 1 && layout.units.len() == 1;
        let opener = VcfOpener {
            plan,
            regions: Arc::new(regions),
            limit: options.limit,
            skip_errors: options.skip_errors,
            batch_size: 8192,
            bgzf_threads: if single { threads } else { 1 },
            progress: None,
            report: None,
            filter,
        };
        VcfExec {
            layout,
            partitions,
            readers,
            opener,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
            report: Mutex::new(Weak::new()),
            options,
            origin: None,
        }
    }

    /// The same scan, knowing what it was planned from.
    pub fn with_origin(mut self, origin: ScanOrigin) -> Self {
        self.origin = Some(Arc::new(origin));
        self
    }

    /// What the scan was planned from (`None` for a scan made otherwise).
    pub fn origin(&self) -> Option<&ScanOrigin> {
        self.origin.as_deref()
    }

    /// How it runs.
    pub fn options(&self) -> ScanOptions {
        self.options
    }

    /// Its output partitions.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// The same scan with one partition per share of the units and no order, for a consumer
    /// to which order does not matter (an aggregation); `None` when it has that layout already
    /// or nothing to share out.
    pub fn unordered(&self) -> Option<VcfExec> {
        if !self.options.preserve_order
            || self.layout.units.len() < 2
            || self.options.partitions < 2
        {
            return None;
        }
        let options = ScanOptions {
            preserve_order: false,
            ..self.options
        };
        let mut scan = VcfExec::new(
            self.layout.clone(),
            Arc::clone(&self.opener.plan),
            self.opener.regions.as_ref().clone(),
            options,
            self.opener.filter.clone(),
        );
        scan.origin = self.origin.clone();
        Some(scan)
    }
}

impl VcfExec {
    /// The report the running partitions share, or a new one.
    fn shared_report(&self) -> Arc<ScanReport> {
        let mut shared = self.report.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(report) = shared.upgrade() {
            return report;
        }
        let report = Arc::new(ScanReport::default());
        *shared = Arc::downgrade(&report);
        report
    }

    /// Per-sample values in each output row: the samples read when `genotypes` is output, else 1.
    pub fn cells_per_row(&self) -> usize {
        let plan = &self.opener.plan;
        if plan.columns.contains(&ColumnKind::Genotypes) {
            plan.selected.len().max(1)
        } else {
            1
        }
    }
}

impl DisplayAs for VcfExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let mut names: Vec<String> = Vec::new();
        for r in &self.layout.units {
            let name = r.path.display().to_string();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let plan = &self.opener.plan;
        let output = self.opener.output_schema();
        let cols: Vec<&str> = output.fields().iter().map(|f| f.name().as_str()).collect();
        write!(
            f,
            "VcfExec: files=[{}], units={}, partitions={}, readers={}, projection=[{}]",
            names.join(", "),
            self.layout.units.len(),
            self.partitions.len(),
            self.readers,
            cols.join(", ")
        )?;
        if plan.columns.contains(&ColumnKind::Info) {
            let keys: Vec<&str> = plan.infos.iter().map(|d| d.id.as_str()).collect();
            write!(f, ", info=[{}]", keys.join(", "))?;
        }
        if plan.columns.contains(&ColumnKind::Genotypes) {
            let keys: Vec<&str> = plan.formats.iter().map(|d| d.id.as_str()).collect();
            write!(f, ", format=[{}]", keys.join(", "))?;
        }
        if plan.needs_samples() || plan.layout == Layout::Long {
            write!(
                f,
                ", samples={}/{}",
                plan.selected.len(),
                plan.sample_names.len()
            )?;
        }
        if !self.opener.regions.is_empty() {
            let regions: Vec<String> = self.opener.regions.iter().map(|r| r.to_string()).collect();
            write!(
                f,
                ", regions=[{}], index={}",
                regions.join(", "),
                self.layout.index
            )?;
        }
        if let Some(filter) = &self.opener.filter {
            write!(f, ", filter={}", filter.predicate)?;
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

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let Some(units) = self.partitions.get(partition) else {
            return datafusion::common::internal_err!("VcfExec has no partition {partition}");
        };
        let mut opener = self.opener.clone();
        opener.batch_size = context.session_config().batch_size();
        let total: u64 = units.iter().map(unit_bytes).sum();
        MetricBuilder::new(&self.metrics)
            .gauge("bytes_total", partition)
            .set(total as usize);
        opener.progress = Some(ScanProgress {
            bytes: MetricBuilder::new(&self.metrics).counter("bytes_scanned", partition),
            records: MetricBuilder::new(&self.metrics).counter("records_scanned", partition),
        });
        opener.report = Some(self.shared_report());
        opener.open(units.clone(), self.readers)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
