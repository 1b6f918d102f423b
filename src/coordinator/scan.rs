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

/// Reads both platforms of a coordinated table and drops re-sent messages (and, with
/// `'dedup' 'variant'`, every row of a variant but the last written: a first pass over both
/// snapshots finds those).
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
    variant: Option<VariantColumns>,
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
        variant: Option<VariantColumns>,
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
            variant,
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
            "CoordinatedExec: {}, dedup={} (max_ids={}{})",
            self.name,
            if self.variant.is_some() {
                "variant"
            } else {
                "message"
            },
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
            self.variant,
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
        let dedup = Pass {
            name: self.name.clone(),
            children: self.children.clone(),
            context,
            id_at: self.id_at,
            variant: self.variant,
            max_ids: self.max_ids,
            follow: self.follow,
        };
        let output = Output {
            schema: Arc::clone(&self.schema),
            columns: self.columns.clone(),
            platforms: self.platforms,
            limit: self.limit,
            dropped: MetricBuilder::new(&self.metrics).counter("duplicates_dropped", 0),
            rows: MetricBuilder::new(&self.metrics).output_rows(0),
        };
        let stream = match self.variant {
            None => dedup.rows(output, None)?,
            Some(variant) => {
                // the first pass decides which message of each variant is kept
                let first = dedup.merged()?;
                let (id_at, max_ids, name) = (self.id_at, self.max_ids, self.name.clone());
                futures::stream::once(
                    async move { latest(first, variant, id_at, max_ids, &name).await },
                )
                .map(move |winners| match winners {
                    Ok(winners) => match dedup.rows(output.clone(), Some(Arc::new(winners))) {
                        Ok(rows) => rows,
                        Err(e) => futures::stream::once(async { Err(e) }).boxed(),
                    },
                    Err(e) => futures::stream::once(async { Err(e) }).boxed(),
                })
                .flatten()
                .boxed()
            }
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Rows of both children, each with the index of the child it came from.
type Merged = futures::stream::BoxStream<'static, (usize, Result<RecordBatch>)>;

/// What one read of a coordinated table runs.
struct Pass {
    name: String,
    children: [Arc<dyn ExecutionPlan>; 2],
    context: Arc<TaskContext>,
    id_at: usize,
    variant: Option<VariantColumns>,
    max_ids: usize,
    follow: bool,
}

/// How kept rows become output.
#[derive(Clone)]
struct Output {
    schema: SchemaRef,
    columns: Vec<OutColumn>,
    platforms: [&'static str; 2],
    limit: Option<usize>,
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
    id_at: usize,
    max_ids: usize,
    name: &str,
) -> Result<std::collections::HashSet<u128>> {
    use datafusion::arrow::datatypes::{Int64Type, TimestampMillisecondType};
    let mut latest = LatestPerKey::new(max_ids);
    while let Some((_, batch)) = merged.next().await {
        let batch = batch?;
        let keys = batch.column(variant.key_at).as_string::<i32>();
        let times = batch
            .column(variant.timestamp_at)
            .as_primitive::<TimestampMillisecondType>();
        let offsets = batch.column(variant.offset_at).as_primitive::<Int64Type>();
        let ids = batch.column(id_at).as_string::<i32>();
        for i in 0..batch.num_rows() {
            if keys.is_null(i) || ids.is_null(i) {
                continue;
            }
            let Some(id) = parse_id(ids.value(i)) else {
                continue;
            };
            let time = if times.is_null(i) { i64::MIN } else { times.value(i) };
            let offset = if offsets.is_null(i) {
                i64::MIN
            } else {
                offsets.value(i)
            };
            latest
                .offer(keys.value(i), time, offset, id)
                .map_err(|full| too_many(name, "variant keys", full.0))?;
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
        output: Output,
        winners: Option<Arc<std::collections::HashSet<u128>>>,
    ) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch>>> {
        let merged = self.merged()?;
        let mut seen = SeenIds::new(
            self.max_ids,
            if self.follow {
                WhenFull::Forget
            } else {
                WhenFull::Fail
            },
        );
        let Output {
            schema,
            columns,
            platforms,
            limit,
            dropped,
            rows,
        } = output;
        let id_at = self.id_at;
        let key_at = self.variant.map(|v| v.key_at);
        let name = self.name.clone();
        let mut left = limit;
        let stream = merged
            .map(move |(lane, batch)| -> Result<Option<RecordBatch>> {
                if left == Some(0) {
                    return Ok(None);
                }
                let batch = batch?;
                let ids = batch.column(id_at).as_string::<i32>();
                let keys = key_at.map(|at| batch.column(at).as_string::<i32>());
                let mut keep = BooleanBuilder::with_capacity(batch.num_rows());
                let mut kept = 0usize;
                let mut duplicates = 0usize;
                for i in 0..batch.num_rows() {
                    let first = match (ids.is_valid(i), parse_id(ids.value(i))) {
                        (true, Some(id)) => {
                            let first = seen
                                .first_time(id)
                                .map_err(|full| too_many(&name, "message ids", full.0))?;
                            // variant mode: a keyed message is kept only if it won its key
                            let keyed = keys.is_some_and(|k| k.is_valid(i));
                            first
                                && (!keyed || winners.as_ref().is_none_or(|w| w.contains(&id)))
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
        Ok(stream.boxed())
    }
}
