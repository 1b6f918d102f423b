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

use super::dedup::{LatestPerKey, SeenIds, WhenFull, parse_id};

/// Where an output column comes from.
#[derive(Debug, Clone, Copy)]
pub enum OutColumn {
    /// Column `i` of the platform scans' output.
    Child(usize),
    /// `_platform`.
    Platform,
}

/// Where `'dedup' 'variant'` finds what it needs in the children's output.
#[derive(Debug, Clone, Copy)]
pub struct VariantColumns {
    /// `_key`.
    pub key_at: usize,
    /// `_timestamp`.
    pub timestamp_at: usize,
    /// `_offset`.
    pub offset_at: usize,
}

/// What a coordinated read is, besides its children.
#[derive(Debug, Clone)]
pub struct CoordinatedRead {
    /// `calls` (the table).
    pub name: String,
    /// `iggy`, `kafka`: the `_platform` value of each child's rows.
    pub platforms: [&'static str; 2],
    /// Where `_id` is in the children's output.
    pub id_at: usize,
    /// The output columns.
    pub columns: Vec<OutColumn>,
    /// `'dedup' 'variant'`: where its columns are (`None`: one row per message id).
    pub variant: Option<VariantColumns>,
    /// Distinct ids (or keys) kept at most.
    pub max_ids: usize,
    /// A followed read (its id window slides).
    pub follow: bool,
    /// Rows wanted at most.
    pub limit: Option<usize>,
    /// Rows of this schema come out.
    pub schema: SchemaRef,
}

/// Reads both platforms of a coordinated table and drops re-sent messages (and, with
/// `'dedup' 'variant'`, every row of a variant but the last written: a first pass over both
/// snapshots finds those).
#[derive(Debug)]
pub struct CoordinatedExec {
    read: Arc<CoordinatedRead>,
    /// The primary's and the fallback's scans (same columns).
    children: [Arc<dyn ExecutionPlan>; 2],
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl CoordinatedExec {
    /// Merges `children` (primary, fallback) as `read` says.
    pub fn new(read: CoordinatedRead, children: [Arc<dyn ExecutionPlan>; 2]) -> Self {
        Self::shared(Arc::new(read), children)
    }

    fn shared(read: Arc<CoordinatedRead>, children: [Arc<dyn ExecutionPlan>; 2]) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&read.schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            if read.follow {
                Boundedness::Unbounded {
                    requires_infinite_memory: false,
                }
            } else {
                Boundedness::Bounded
            },
        ));
        CoordinatedExec {
            read,
            children,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for CoordinatedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let read = &self.read;
        write!(
            f,
            "CoordinatedExec: {}, dedup={} (max_ids={}{})",
            read.name,
            if read.variant.is_some() {
                "variant"
            } else {
                "message"
            },
            read.max_ids,
            if read.follow { ", sliding" } else { "" }
        )?;
        if let Some(limit) = read.limit {
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
        Ok(Arc::new(CoordinatedExec::shared(
            Arc::clone(&self.read),
            [primary, fallback],
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
        let pass = Pass {
            read: Arc::clone(&self.read),
            children: self.children.clone(),
            context,
            dropped: MetricBuilder::new(&self.metrics).counter("duplicates_dropped", 0),
            rows: MetricBuilder::new(&self.metrics).output_rows(0),
        };
        let stream = match self.read.variant {
            None => pass.rows(None)?,
            Some(variant) => {
                // the first pass decides which message of each variant is kept
                let first = pass.merged()?;
                let read = Arc::clone(&self.read);
                futures::stream::once(async move { latest(first, variant, &read).await })
                    .map(
                        move |winners| match winners.and_then(|w| pass.rows(Some(Arc::new(w)))) {
                            Ok(rows) => rows,
                            Err(e) => futures::stream::once(async { Err(e) }).boxed(),
                        },
                    )
                    .flatten()
                    .boxed()
            }
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.read.schema),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Rows of both children, each with the index of the child it came from.
type Merged = futures::stream::BoxStream<'static, (usize, Result<RecordBatch>)>;

/// One pass over both children of a coordinated read.
struct Pass {
    read: Arc<CoordinatedRead>,
    children: [Arc<dyn ExecutionPlan>; 2],
    context: Arc<TaskContext>,
    dropped: datafusion::physical_plan::metrics::Count,
    rows: datafusion::physical_plan::metrics::Count,
}

/// "more than N distinct … in one read" of `name`.
fn too_many(name: &str, what: &str, limit: usize) -> DataFusionError {
    DataFusionError::Execution(format!(
        "coordinated table {name}: more than {limit} distinct {what} in one read; raise \
         'dedup.max_ids' or read a narrower range"
    ))
}

/// The first pass of `'dedup' 'variant'`: the id of the message written last for each key.
async fn latest(
    mut merged: Merged,
    variant: VariantColumns,
    read: &CoordinatedRead,
) -> Result<std::collections::HashSet<u128>> {
    use datafusion::arrow::datatypes::{Int64Type, TimestampMillisecondType};
    let mut latest = LatestPerKey::new(read.max_ids);
    while let Some((_, batch)) = merged.next().await {
        let batch = batch?;
        let keys = batch.column(variant.key_at).as_string::<i32>();
        let times = batch
            .column(variant.timestamp_at)
            .as_primitive::<TimestampMillisecondType>();
        let offsets = batch.column(variant.offset_at).as_primitive::<Int64Type>();
        let ids = batch.column(read.id_at).as_string::<i32>();
        for i in 0..batch.num_rows() {
            if keys.is_null(i) || ids.is_null(i) {
                continue;
            }
            let Some(id) = parse_id(ids.value(i)) else {
                continue;
            };
            let time = if times.is_null(i) {
                i64::MIN
            } else {
                times.value(i)
            };
            let offset = if offsets.is_null(i) {
                i64::MIN
            } else {
                offsets.value(i)
            };
            latest
                .offer(keys.value(i), time, offset, id)
                .map_err(|full| too_many(&read.name, "variant keys", full.0))?;
        }
    }
    Ok(latest.winners())
}

impl Pass {
    /// Both children's partitions, read at once.
    fn merged(&self) -> Result<Merged> {
        let mut inputs = Vec::new();
        for (lane, child) in self.children.iter().enumerate() {
            for p in 0..child.output_partitioning().partition_count() {
                let stream = child.execute(p, Arc::clone(&self.context))?;
                inputs.push(stream.map(move |batch| (lane, batch)).boxed());
            }
        }
        Ok(futures::stream::select_all(inputs).boxed())
    }

    /// The rows read once: a message id seen before is dropped, and with `winners` (variant
    /// mode) so is every keyed message that is not its key's winner.
    fn rows(
        &self,
        winners: Option<Arc<std::collections::HashSet<u128>>>,
    ) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch>>> {
        let merged = self.merged()?;
        let read = Arc::clone(&self.read);
        let mut seen = SeenIds::new(
            read.max_ids,
            if read.follow {
                WhenFull::Forget
            } else {
                WhenFull::Fail
            },
        );
        let (dropped, rows) = (self.dropped.clone(), self.rows.clone());
        let key_at = read.variant.map(|v| v.key_at);
        let mut left = read.limit;
        let stream = merged
            .map(move |(lane, batch)| -> Result<Option<RecordBatch>> {
                if left == Some(0) {
                    return Ok(None);
                }
                let batch = batch?;
                let ids = batch.column(read.id_at).as_string::<i32>();
                let keys = key_at.map(|at| batch.column(at).as_string::<i32>());
                let mut keep = BooleanBuilder::with_capacity(batch.num_rows());
                let mut kept = 0usize;
                let mut duplicates = 0usize;
                for i in 0..batch.num_rows() {
                    let first = match (ids.is_valid(i), parse_id(ids.value(i))) {
                        (true, Some(id)) => {
                            let first = seen
                                .first_time(id)
                                .map_err(|full| too_many(&read.name, "message ids", full.0))?;
                            // variant mode: a keyed message is kept only if it won its key
                            let keyed = keys.is_some_and(|k| k.is_valid(i));
                            first && (!keyed || winners.as_ref().is_none_or(|w| w.contains(&id)))
                        }
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
                let out: Vec<ArrayRef> =
                    read.columns
                        .iter()
                        .map(|c| match c {
                            OutColumn::Child(i) => filter(batch.column(*i), &mask),
                            OutColumn::Platform => Ok(Arc::new(StringArray::from(
                                vec![read.platforms[lane]; kept],
                            )) as ArrayRef),
                        })
                        .collect::<std::result::Result<_, _>>()?;
                rows.add(kept);
                Ok(Some(RecordBatch::try_new_with_options(
                    Arc::clone(&read.schema),
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
        Ok(stream.boxed())
    }
}
