//! The read of a coordinated table: both platforms' topic scans at once, merged, with the
//! copies of re-sent messages dropped by message id and a `_platform` column saying where
//! each row was read.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, RecordBatch, StringArray,
};
use datafusion::arrow::compute::filter;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::StreamExt;

use super::dedup::{SeenIds, WhenFull, parse_id};

/// Where an output column comes from.
#[derive(Debug, Clone, Copy)]
pub enum OutColumn {
    /// Column `i` of the platform scans' output.
    Child(usize),
    /// `_platform`.
    Platform,
}

/// Reads both platforms of a coordinated table and drops re-sent messages.
#[derive(Debug)]
pub struct CoordinatedExec {
    /// `calls` (the table).
    name: String,
    /// The primary's and the fallback's scans (same columns).
    children: [Arc<dyn ExecutionPlan>; 2],
    /// `iggy`, `kafka`: the `_platform` value of each child's rows.
    platforms: [&'static str; 2],
    /// Where `_id` is in the children's output.
    id_at: usize,
    columns: Vec<OutColumn>,
    max_ids: usize,
    follow: bool,
    limit: Option<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl CoordinatedExec {
    /// Merges `children` (primary, fallback) into rows of `schema` made as `columns` say.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        children: [Arc<dyn ExecutionPlan>; 2],
        platforms: [&'static str; 2],
        id_at: usize,
        columns: Vec<OutColumn>,
        max_ids: usize,
        follow: bool,
        limit: Option<usize>,
        schema: SchemaRef,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            if follow {
                Boundedness::Unbounded {
                    requires_infinite_memory: false,
                }
            } else {
                Boundedness::Bounded
            },
        ));
        CoordinatedExec {
            name,
            children,
            platforms,
            id_at,
            columns,
            max_ids,
            follow,
            limit,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for CoordinatedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "CoordinatedExec: {}, dedup=message (max_ids={}{})",
            self.name,
            self.max_ids,
            if self.follow { ", sliding" } else { "" }
        )?;
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for CoordinatedExec {
    fn name(&self) -> &str {
        "CoordinatedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.children.iter().collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [primary, fallback]: [Arc<dyn ExecutionPlan>; 2] = children
            .try_into()
            .map_err(|_| DataFusionError::Internal("CoordinatedExec has two children".into()))?;
        Ok(Arc::new(CoordinatedExec::new(
            self.name.clone(),
            [primary, fallback],
            self.platforms,
            self.id_at,
            self.columns.clone(),
            self.max_ids,
            self.follow,
            self.limit,
            Arc::clone(&self.schema),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "CoordinatedExec has one partition, not {partition}"
            )));
        }
        let mut inputs = Vec::new();
        for (lane, child) in self.children.iter().enumerate() {
            for p in 0..child.output_partitioning().partition_count() {
                let stream = child.execute(p, Arc::clone(&context))?;
                inputs.push(stream.map(move |batch| (lane, batch)).boxed());
            }
        }
        let merged = futures::stream::select_all(inputs);
        let mut seen = SeenIds::new(
            self.max_ids,
            if self.follow {
                WhenFull::Forget
            } else {
                WhenFull::Fail
            },
        );
        let dropped = MetricBuilder::new(&self.metrics).counter("duplicates_dropped", 0);
        let rows = MetricBuilder::new(&self.metrics).output_rows(0);
        let schema = Arc::clone(&self.schema);
        let columns = self.columns.clone();
        let platforms = self.platforms;
        let id_at = self.id_at;
        let name = self.name.clone();
        let mut left = self.limit;
        let stream = merged
            .map(move |(lane, batch)| -> Result<Option<RecordBatch>> {
                if left == Some(0) {
                    return Ok(None);
                }
                let batch = batch?;
                let ids = batch.column(id_at).as_string::<i32>();
                let mut keep = BooleanBuilder::with_capacity(batch.num_rows());
                let mut kept = 0usize;
                let mut duplicates = 0usize;
                for i in 0..batch.num_rows() {
                    let first = match (ids.is_valid(i), parse_id(ids.value(i))) {
                        (true, Some(id)) => seen.first_time(id).map_err(|full| {
                            DataFusionError::Execution(format!(
                                "coordinated table {name}: more than {} distinct message ids in \
                                 one read; raise 'dedup.max_ids' or read a narrower range",
                                full.0
                            ))
                        })?,
                        // a message without id (a tombstone) cannot be a re-send
                        _ => true,
                    };
                    duplicates += usize::from(!first);
                    let first = first && left.is_none_or(|l| kept < l);
                    kept += usize::from(first);
                    keep.append_value(first);
                }
                dropped.add(duplicates);
                if let Some(l) = left.as_mut() {
                    *l -= kept.min(*l);
                }
                let mask = keep.finish();
                let out: Vec<ArrayRef> = columns
                    .iter()
                    .map(|c| match c {
                        OutColumn::Child(i) => filter(batch.column(*i), &mask),
                        OutColumn::Platform => {
                            Ok(Arc::new(StringArray::from(vec![platforms[lane]; kept]))
                                as ArrayRef)
                        }
                    })
                    .collect::<std::result::Result<_, _>>()?;
                rows.add(kept);
                Ok(Some(RecordBatch::try_new_with_options(
                    Arc::clone(&schema),
                    out,
                    &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(kept)),
                )?))
            })
            .take_while(|item| futures::future::ready(!matches!(item, Ok(None))))
            .filter_map(|item| {
                futures::future::ready(match item {
                    Ok(Some(batch)) if batch.num_rows() == 0 => None,
                    Ok(Some(batch)) => Some(Ok(batch)),
                    Ok(None) => None,
                    Err(e) => Some(Err(e)),
                })
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
