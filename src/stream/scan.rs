//! The scan of a topic table, the same for every platform: partitions grouped onto readers
//! (one DataFusion partition and one platform client each), each reader on its own thread
//! ([`crate::readers`]) decoding messages in batches, filtering (follow mode), projecting,
//! stopping at each partition's end offset, at LIMIT, or when the query is dropped — and
//! saying which of these ended it.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

use super::StreamError;
use super::codec::{Decoder, ID_COLUMN, KEY_COLUMN};
use super::platform::{Event, PartitionRange, PartitionSource};
use super::table::TopicTable;
use crate::readers::{self, Ending, Flow, Outlet};

/// Rows per batch read.
const BATCH_ROWS: usize = 8192;

/// Reads a topic's partitions, one group of them per DataFusion partition.
#[derive(Debug)]
pub struct TopicExec {
    table: TopicTable,
    /// Partitions to read, grouped: one group per DataFusion partition (one reader).
    groups: Vec<Vec<PartitionRange>>,
    projection: Option<Vec<usize>>,
    /// Filters applied by the reader itself (follow mode), over the full schema.
    predicate: Option<Arc<dyn PhysicalExpr>>,
    limit: Option<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl TopicExec {
    /// Reads `ranges` of `table` with at most `readers` readers.
    pub fn new(
        table: TopicTable,
        ranges: Vec<PartitionRange>,
        readers: usize,
        projection: Option<Vec<usize>>,
        predicate: Option<Arc<dyn PhysicalExpr>>,
        limit: Option<usize>,
    ) -> Result<Self> {
        let readers = readers.clamp(1, ranges.len().max(1));
        let mut groups: Vec<Vec<PartitionRange>> = vec![Vec::new(); readers];
        for (i, range) in ranges.into_iter().enumerate() {
            groups[i % readers].push(range);
        }
        Self::with_groups(table, groups, projection, predicate, limit)
    }

    /// Reads `groups` of partition ranges of `table`, a DataFusion partition (a reader) each.
    pub fn with_groups(
        table: TopicTable,
        groups: Vec<Vec<PartitionRange>>,
        projection: Option<Vec<usize>>,
        predicate: Option<Arc<dyn PhysicalExpr>>,
        limit: Option<usize>,
    ) -> Result<Self> {
        let full = datafusion::catalog::TableProvider::schema(&table);
        let schema = match &projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(groups.len()),
            EmissionType::Incremental,
            if table.options().follow {
                Boundedness::Unbounded {
                    requires_infinite_memory: false,
                }
            } else {
                Boundedness::Bounded
            },
        ));
        Ok(TopicExec {
            table,
            groups,
            projection,
            predicate,
            limit,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The table read.
    pub fn table(&self) -> &TopicTable {
        &self.table
    }

    /// The groups of partition ranges, one per DataFusion partition.
    pub fn groups(&self) -> &[Vec<PartitionRange>] {
        &self.groups
    }

    /// The columns read, as indices into the table's schema (`None`: all).
    pub fn projection(&self) -> Option<&[usize]> {
        self.projection.as_deref()
    }

    /// The filter the reader applies itself (follow mode).
    pub fn predicate(&self) -> Option<&Arc<dyn PhysicalExpr>> {
        self.predicate.as_ref()
    }

    /// At most this many rows.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The partition ranges read, in reading order.
    pub fn ranges(&self) -> impl Iterator<Item = &PartitionRange> {
        self.groups.iter().flatten()
    }
}

impl DisplayAs for TopicExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let mut ranges: Vec<&PartitionRange> = self.ranges().collect();
        ranges.sort_by_key(|r| r.partition);
        let ranges: Vec<String> = ranges
            .iter()
            .map(|r| match r.end {
                Some(end) => format!("{}:{}..{}", r.partition, r.start, end),
                None => format!("{}:{}..", r.partition, r.start),
            })
            .collect();
        write!(
            f,
            "{}: {}, partitions=[{}], mode={}",
            self.table.platform().scan_name(),
            self.table.target(),
            ranges.join(", "),
            if self.table.options().follow {
                "follow"
            } else {
                "snapshot"
            }
        )?;
        if let Some(predicate) = &self.predicate {
            write!(f, ", filter={predicate}")?;
        }
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for TopicExec {
    fn name(&self) -> &str {
        self.table.platform().scan_name()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
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
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = Arc::clone(&self.schema);
        let ranges = self.groups.get(partition).cloned().unwrap_or_default();
        if ranges.is_empty() {
            // a topic with no partition to read: one empty partition
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::empty(),
            )));
        }
        let partitions: Vec<String> = ranges.iter().map(|r| r.partition.to_string()).collect();
        let target = format!("{} partition {}", self.table.target(), partitions.join(","));
        let name = format!(
            "{}-{}",
            self.table.platform().scan_name(),
            partitions.first().map_or("", String::as_str)
        );
        let reader = PartitionReader {
            table: self.table.clone(),
            ranges,
            projection: self.projection.clone(),
            predicate: self.predicate.clone(),
            limit: self.limit,
            target: target.clone(),
            batches: 0,
            counts: ReadCounts {
                messages: MetricBuilder::new(&self.metrics).counter("messages_read", partition),
                skipped: MetricBuilder::new(&self.metrics).counter("messages_skipped", partition),
                rows: MetricBuilder::new(&self.metrics).output_rows(partition),
            },
        };
        let started = readers::spawn(name, target.clone(), move |out| reader.run(out))?;
        Ok(readers::ordered_stream(
            schema,
            vec![started],
            vec![target],
            None,
        ))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// What a reader counts, shown by `EXPLAIN ANALYZE`.
struct ReadCounts {
    /// Messages taken from the topic (within the partitions' ranges).
    messages: Count,
    /// Messages skipped because they do not decode (`on_error = 'skip'`).
    skipped: Count,
    /// Rows sent on (after the reader's own filter).
    rows: Count,
}

/// Reads a group of partitions through one [`PartitionSource`] on its own thread, sending
/// batches until every partition reaches its end offset (or LIMIT, or the query is dropped).
struct PartitionReader {
    table: TopicTable,
    ranges: Vec<PartitionRange>,
    projection: Option<Vec<usize>>,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    limit: Option<usize>,
    /// `kafka host:port/topic partition 0,2`, for errors.
    target: String,
    /// Batches sent so far.
    batches: usize,
    counts: ReadCounts,
}

impl PartitionReader {
    fn run(mut self, out: &Outlet) -> Result<Ending> {
        let ending = self.read(out)?;
        if ending == Ending::Finished && out.unit_done() == Flow::Abandoned {
            return Ok(Ending::Abandoned);
        }
        Ok(ending)
    }

    /// Sends what the decoder holds (filtered and projected); false when the consumer is gone.
    fn send(&mut self, out: &Outlet, decoder: &mut Decoder, sent: &mut usize) -> Result<bool> {
        // every message taken goes through the decoder (counted here, once per batch)
        self.counts.messages.add(decoder.len());
        let skipped = decoder.skipped;
        let batch = decoder.flush()?;
        self.counts
            .skipped
            .add((decoder.skipped - skipped) as usize);
        let Some(batch) = batch else {
            return Ok(true);
        };
        let batch = match &self.predicate {
            Some(predicate) => {
                let mask = predicate
                    .evaluate(&batch)
                    .and_then(|mask| mask.into_array(batch.num_rows()))?;
                filter_record_batch(&batch, mask.as_boolean())?
            }
            None => batch,
        };
        if batch.num_rows() == 0 {
            return Ok(true);
        }
        let batch = match &self.projection {
            Some(p) => batch
                .project(p)
                .map_err(|e| StreamError::permanent(self.table.target(), e))?,
            None => batch,
        };
        *sent += batch.num_rows();
        self.counts.rows.add(batch.num_rows());
        readers::fault_point(|| self.target.clone(), self.batches);
        self.batches += 1;
        Ok(out.send(batch) == Flow::Continue)
    }

    fn read(&mut self, out: &Outlet) -> Result<Ending> {
        let follow = self.table.options().follow;
        // partitions still being read, with their end offsets
        let mut open: Vec<PartitionRange> = self
            .ranges
            .iter()
            .copied()
            .filter(|r| r.end.is_none_or(|end| r.start < end))
            .collect();
        if open.is_empty() {
            return Ok(Ending::Finished);
        }
        let options = self.table.options();
        let mut decoder = Decoder::new(
            options.format,
            options.on_error,
            Arc::clone(self.table.variant()),
            self.table.has_ids(),
            self.table.target(),
        );
        // only the columns the query reads are decoded or made (a filter evaluated here needs
        // the full row)
        let mut keys = true;
        if self.predicate.is_none()
            && let Some(projection) = &self.projection
        {
            let variant_len = self.table.variant().fields().len();
            let mut variant: Vec<usize> = projection
                .iter()
                .copied()
                .filter(|i| *i < variant_len)
                .collect();
            variant.sort_unstable();
            variant.dedup();
            if variant.is_empty() && variant_len > 0 {
                // count(*): one column still proves each message decodes
                variant.push(0);
            }
            let mut metadata: Vec<usize> = projection
                .iter()
                .filter_map(|i| i.checked_sub(variant_len))
                .collect();
            metadata.sort_unstable();
            metadata.dedup();
            // ids made here (not kept by the platform) come from key and value
            keys = metadata.contains(&KEY_COLUMN) || metadata.contains(&ID_COLUMN);
            let remapped = projection
                .iter()
                .map(|i| match i.checked_sub(variant_len) {
                    None => variant.iter().position(|n| n == i).unwrap_or(0),
                    Some(m) => variant.len() + metadata.iter().position(|n| *n == m).unwrap_or(0),
                })
                .collect();
            decoder = decoder
                .only(variant, metadata)
                .map_err(|e| StreamError::permanent(self.table.target(), e))?;
            self.projection = Some(remapped);
        }
        let mut source: Box<dyn PartitionSource> =
            self.table.platform().open_source(&open, keys)?;
        let mut sent = 0usize;
        let limit = self.limit;
        let mut events = Vec::new();
        let finish = |open: &mut Vec<PartitionRange>,
                      source: &mut Box<dyn PartitionSource>,
                      partition: i32| {
            open.retain(|r| r.partition != partition);
            source.close(partition);
        };
        while !open.is_empty() {
            if out.is_closed() {
                return Ok(Ending::Abandoned);
            }
            events.clear();
            source.poll(&mut events)?;
            if events.is_empty() {
                // nothing new: what waits goes out now (a followed topic may be quiet a while)
                if !decoder.is_empty() && !self.send(out, &mut decoder, &mut sent)? {
                    return Ok(Ending::Abandoned);
                }
                continue;
            }
            for event in events.drain(..) {
                match event {
                    Event::CaughtUp(partition) => {
                        if !follow && open.iter().any(|r| r.partition == partition) {
                            // a snapshot partition is finished at its current end too (the
                            // end offset may count markers that are not messages)
                            finish(&mut open, &mut source, partition);
                        } else if !decoder.is_empty() && !self.send(out, &mut decoder, &mut sent)? {
                            return Ok(Ending::Abandoned);
                        }
                    }
                    Event::Message(m) => {
                        let (partition, offset) = (m.partition, m.offset);
                        let Some(range) = open.iter().find(|r| r.partition == partition).copied()
                        else {
                            continue;
                        };
                        if offset < range.start {
                            continue;
                        }
                        if range.end.is_some_and(|end| offset >= end) {
                            finish(&mut open, &mut source, partition);
                            continue;
                        }
                        decoder.push(m);
                        if range.end.is_some_and(|end| offset + 1 >= end) {
                            finish(&mut open, &mut source, partition);
                        }
                    }
                }
            }
            let enough = limit.is_some_and(|l| sent + decoder.len() >= l);
            if decoder.len() >= BATCH_ROWS || open.is_empty() || enough {
                if !self.send(out, &mut decoder, &mut sent)? {
                    return Ok(Ending::Abandoned);
                }
                if limit.is_some_and(|l| sent >= l) {
                    return Ok(Ending::LimitReached);
                }
            }
        }
        if !self.send(out, &mut decoder, &mut sent)? {
            return Ok(Ending::Abandoned);
        }
        if decoder.skipped > 0 {
            log::warn!(
                "{}: skipped {} message(s) that do not decode",
                self.table.target(),
                decoder.skipped
            );
        }
        Ok(Ending::Finished)
    }
}
