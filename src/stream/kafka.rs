//! Kafka topics as tables: `CREATE EXTERNAL TABLE t STORED AS KAFKA LOCATION 'host:port/topic'`.
//!
//! A `SELECT` reads every partition in parallel (one DataFusion partition each) from its start
//! position to the high watermark taken when the query is planned (a snapshot: rows produced
//! later are not read), or without end in follow mode. Filters on `_partition`, `_offset` and
//! `_timestamp` become seek positions. `INSERT` goes through [`crate::sink::kafka::KafkaSink`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    BinaryExpr, CreateExternalTable, Expr, Operator, TableProviderFilterPushDown,
};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::StreamError;
use super::codec::{Decoder, Encoder, InMessage, metadata_fields};
use super::options::{Start, TopicOptions, parse_location};
use crate::readers::{self, Ending, Flow, Outlet};
use crate::sink::TopicDataSink;
use crate::sink::kafka::{KafkaSink, ProducerPool, Transactions, is_retryable};

/// Rows per batch read.
const BATCH_ROWS: usize = 8192;

/// `STORED AS KAFKA`.
#[derive(Debug, Default)]
pub struct KafkaTableFactory;

#[async_trait]
impl TableProviderFactory for KafkaTableFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let options = TopicOptions::from_sql_options(&cmd.options)?;
        let declared: Schema = cmd.schema.as_arrow().clone();
        let declared = (!declared.fields().is_empty()).then(|| Arc::new(declared));
        let table = KafkaTable::open(&cmd.location, options, declared).await?;
        Ok(Arc::new(table))
    }
}

/// A Kafka topic as a table.
#[derive(Debug, Clone)]
pub struct KafkaTable {
    servers: String,
    topic: String,
    options: TopicOptions,
    variant: SchemaRef,
    schema: SchemaRef,
    /// Producers kept between the table's `INSERT`s.
    producers: Arc<ProducerPool>,
}

/// The columns of a variant when neither columns nor `like` say otherwise: VCF site columns.
fn site_schema() -> Schema {
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    Schema::new(vec![
        Field::new("chrom", DataType::Utf8, true),
        Field::new("pos", DataType::Int64, true),
        Field::new("id", DataType::Utf8, true),
        Field::new("ref", DataType::Utf8, true),
        Field::new("alt", list.clone(), true),
        Field::new("qual", DataType::Float64, true),
        Field::new("filter", list, true),
    ])
}

/// Every field nullable (messages may leave any value out), metadata of the VCF kept.
fn nullable(schema: &Schema) -> Schema {
    Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    )
}

impl KafkaTable {
    /// Connects, makes the topic when it does not exist, and fixes the columns: `declared`
    /// (the column list of CREATE), else those of the `like` file, else VCF site columns.
    pub async fn open(
        location: &str,
        options: TopicOptions,
        declared: Option<SchemaRef>,
    ) -> Result<Self> {
        let (servers, topic) = parse_location(location)?;
        let variant = match (&declared, &options.like) {
            (Some(schema), _) => nullable(schema),
            (None, Some(like)) => {
                let table = crate::vcf::table::VcfTable::open(like, Default::default())?;
                nullable(table.schema().as_ref())
            }
            (None, None) => site_schema(),
        };
        for f in variant.fields() {
            if metadata_fields().iter().any(|m| m.name() == f.name()) {
                return Err(DataFusionError::Plan(format!(
                    "column '{}' is added by the topic table; do not declare it",
                    f.name()
                )));
            }
        }
        let mut fields: Vec<Field> = variant
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(metadata_fields());
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            variant.metadata().clone(),
        ));
        let table = KafkaTable {
            servers,
            topic,
            options,
            variant: Arc::new(variant),
            schema,
            producers: Arc::new(ProducerPool::default()),
        };
        let probe = table.clone();
        tokio::task::spawn_blocking(move || probe.ensure_topic())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))??;
        Ok(table)
    }

    /// `kafka host:port/topic`.
    pub fn target(&self) -> String {
        format!("kafka {}/{}", self.servers, self.topic)
    }

    fn consumer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.servers)
            .set("group.id", &self.options.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            // a consumer prefetches up to 64 MiB by default; half keeps reads as fast
            .set("queued.max.messages.kbytes", "32768");
        for (k, v) in &self.options.client {
            c.set(k, v);
        }
        c
    }

    fn producer_config(&self) -> Vec<(String, String)> {
        let mut c: Vec<(String, String)> = [
            ("bootstrap.servers", self.servers.as_str()),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("message.timeout.ms", "30000"),
            ("queue.buffering.max.kbytes", "65536"),
            ("linger.ms", "5"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in &self.options.client {
            if k == "isolation.level" || k == "group.id" || k.starts_with("enable.auto") {
                continue;
            }
            c.retain(|(key, _)| key != k);
            c.push((k.clone(), v.clone()));
        }
        c
    }

    fn error(&self, what: &str, e: KafkaError) -> StreamError {
        StreamError {
            target: self.target(),
            message: format!("{what}: {e}"),
            retryable: is_retryable(&e),
        }
    }

    /// Checks the broker answers; makes the topic when missing.
    fn ensure_topic(&self) -> std::result::Result<(), StreamError> {
        let consumer: BaseConsumer = self
            .consumer_config()
            .create()
            .map_err(|e| self.error("cannot create a client", e))?;
        let metadata = consumer
            .fetch_metadata(Some(&self.topic), self.options.timeout)
            .map_err(|e| self.error("broker does not answer", e))?;
        let exists = metadata
            .topics()
            .iter()
            .any(|t| t.name() == self.topic && t.error().is_none() && !t.partitions().is_empty());
        if exists {
            return Ok(());
        }
        let mut admin_config = ClientConfig::new();
        admin_config.set("bootstrap.servers", &self.servers);
        for (k, v) in &self.options.client {
            if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
                admin_config.set(k, v);
            }
        }
        let admin: AdminClient<_> = admin_config
            .create()
            .map_err(|e| self.error("cannot create an admin client", e))?;
        let topic = NewTopic::new(
            &self.topic,
            self.options.partitions,
            TopicReplication::Fixed(self.options.replication),
        );
        let opts = AdminOptions::new().operation_timeout(Some(self.options.timeout));
        let results = futures::executor::block_on(admin.create_topics([&topic], &opts))
            .map_err(|e| self.error("cannot create the topic", e))?;
        for result in results {
            if let Err((_, code)) = result
                && code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
            {
                return Err(StreamError::permanent(
                    self.target(),
                    format!("cannot create the topic: {code}"),
                ));
            }
        }
        Ok(())
    }

    /// Start and end offsets of each partition read, from watermarks taken now.
    fn plan_ranges(&self, seek: &Seek) -> std::result::Result<Vec<PartitionRange>, StreamError> {
        let consumer: BaseConsumer = self
            .consumer_config()
            .create()
            .map_err(|e| self.error("cannot create a client", e))?;
        let timeout = self.options.timeout;
        let metadata = consumer
            .fetch_metadata(Some(&self.topic), timeout)
            .map_err(|e| self.error("broker does not answer", e))?;
        let Some(topic) = metadata.topics().iter().find(|t| t.name() == self.topic) else {
            return Err(StreamError::permanent(
                self.target(),
                "topic does not exist",
            ));
        };
        if let Some(e) = topic.error() {
            return Err(StreamError::permanent(
                self.target(),
                format!(
                    "topic not readable: {}",
                    rdkafka::types::RDKafkaErrorCode::from(e)
                ),
            ));
        }
        let mut ranges = Vec::new();
        let mut partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        for partition in partitions {
            if let Some(wanted) = &seek.partitions
                && !wanted.contains(&partition)
            {
                continue;
            }
            let (low, high) = consumer
                .fetch_watermarks(&self.topic, partition, timeout)
                .map_err(|e| self.error(&format!("partition {partition}: no watermarks"), e))?;
            let at_time = |ts: i64| -> std::result::Result<i64, StreamError> {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&self.topic, partition, Offset::Offset(ts))
                    .map_err(|e| self.error("bad timestamp", e))?;
                let found = consumer
                    .offsets_for_times(tpl, timeout)
                    .map_err(|e| self.error("cannot look up offsets by time", e))?;
                Ok(
                    match found
                        .find_partition(&self.topic, partition)
                        .map(|p| p.offset())
                    {
                        Some(Offset::Offset(o)) => o,
                        _ => high,
                    },
                )
            };
            let mut start = match self.options.start {
                Start::Earliest => low,
                Start::Latest => high,
                Start::Timestamp(ts) => at_time(ts)?,
            };
            if let Some(ts) = seek.from_timestamp {
                start = start.max(at_time(ts)?);
            }
            if let Some(from) = seek.from_offset {
                start = start.max(from);
            }
            let end = match (self.options.follow, seek.to_offset) {
                (true, to) => to,
                (false, Some(to)) => Some(to.min(high)),
                (false, None) => Some(high),
            };
            ranges.push(PartitionRange {
                partition,
                start,
                end,
            });
        }
        Ok(ranges)
    }
}

/// What filters say about where to read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seek {
    /// Only these partitions.
    pub partitions: Option<Vec<i32>>,
    /// First offset (inclusive).
    pub from_offset: Option<i64>,
    /// End offset (exclusive).
    pub to_offset: Option<i64>,
    /// First timestamp (ms, inclusive).
    pub from_timestamp: Option<i64>,
}

fn literal_i64(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::Int8(Some(x)) => Some(i64::from(*x)),
            ScalarValue::Int16(Some(x)) => Some(i64::from(*x)),
            ScalarValue::Int32(Some(x)) => Some(i64::from(*x)),
            ScalarValue::Int64(Some(x)) => Some(*x),
            ScalarValue::UInt8(Some(x)) => Some(i64::from(*x)),
            ScalarValue::UInt16(Some(x)) => Some(i64::from(*x)),
            ScalarValue::UInt32(Some(x)) => Some(i64::from(*x)),
            ScalarValue::UInt64(Some(x)) => i64::try_from(*x).ok(),
            ScalarValue::TimestampSecond(Some(x), _) => x.checked_mul(1000),
            ScalarValue::TimestampMillisecond(Some(x), _) => Some(*x),
            ScalarValue::TimestampMicrosecond(Some(x), _) => Some(x / 1000),
            ScalarValue::TimestampNanosecond(Some(x), _) => Some(x / 1_000_000),
            _ => None,
        },
        Expr::Cast(c) => literal_i64(&c.expr),
        Expr::TryCast(c) => literal_i64(&c.expr),
        _ => None,
    }
}

fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) => column_name(&c.expr),
        _ => None,
    }
}

/// Narrows `seek` by one filter; whether the filter was understood.
fn apply_filter(seek: &mut Seek, filter: &Expr) -> bool {
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (name, value, op) = match (column_name(left), literal_i64(right)) {
                (Some(n), Some(v)) => (n, v, *op),
                _ => match (column_name(right), literal_i64(left), op.swap()) {
                    (Some(n), Some(v), Some(op)) => (n, v, op),
                    _ => return false,
                },
            };
            match (name, op) {
                ("_partition", Operator::Eq) => {
                    let p = i32::try_from(value).unwrap_or(-1);
                    seek.partitions = Some(match seek.partitions.take() {
                        Some(ps) => ps.into_iter().filter(|x| *x == p).collect(),
                        None => vec![p],
                    });
                    true
                }
                ("_offset", Operator::Eq) => {
                    lower(&mut seek.from_offset, value);
                    upper(&mut seek.to_offset, value.saturating_add(1));
                    true
                }
                ("_offset", Operator::Gt) => {
                    lower(&mut seek.from_offset, value.saturating_add(1));
                    true
                }
                ("_offset", Operator::GtEq) => {
                    lower(&mut seek.from_offset, value);
                    true
                }
                ("_offset", Operator::Lt) => {
                    upper(&mut seek.to_offset, value);
                    true
                }
                ("_offset", Operator::LtEq) => {
                    upper(&mut seek.to_offset, value.saturating_add(1));
                    true
                }
                ("_timestamp", Operator::Gt) => {
                    lower(&mut seek.from_timestamp, value.saturating_add(1));
                    true
                }
                ("_timestamp", Operator::GtEq | Operator::Eq) => {
                    lower(&mut seek.from_timestamp, value);
                    true
                }
                _ => false,
            }
        }
        Expr::Between(b) if !b.negated => match (
            column_name(&b.expr),
            literal_i64(&b.low),
            literal_i64(&b.high),
        ) {
            (Some("_offset"), Some(lo), Some(hi)) => {
                lower(&mut seek.from_offset, lo);
                upper(&mut seek.to_offset, hi.saturating_add(1));
                true
            }
            (Some("_timestamp"), Some(lo), Some(_)) => {
                lower(&mut seek.from_timestamp, lo);
                true
            }
            _ => false,
        },
        Expr::InList(list) if !list.negated && column_name(&list.expr) == Some("_partition") => {
            let values: Option<Vec<i32>> = list
                .list
                .iter()
                .map(|e| literal_i64(e).and_then(|v| i32::try_from(v).ok()))
                .collect();
            let Some(values) = values else {
                return false;
            };
            seek.partitions = Some(match seek.partitions.take() {
                Some(ps) => ps.into_iter().filter(|x| values.contains(x)).collect(),
                None => values,
            });
            true
        }
        _ => false,
    }
}

fn lower(bound: &mut Option<i64>, value: i64) {
    *bound = Some(bound.map_or(value, |b| b.max(value)));
}

fn upper(bound: &mut Option<i64>, value: i64) {
    *bound = Some(bound.map_or(value, |b| b.min(value)));
}

/// The seek positions the filters give.
pub fn seek_from_filters(filters: &[Expr]) -> Seek {
    let mut seek = Seek::default();
    for f in filters {
        apply_filter(&mut seek, f);
    }
    seek
}

#[async_trait]
impl TableProvider for KafkaTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        if self.options.follow {
            // an unbounded read filters its own batches: a FilterExec above it would hold rows
            // back until it had a full batch, and a followed topic may never give one
            return Ok(vec![TableProviderFilterPushDown::Exact; filters.len()]);
        }
        Ok(filters
            .iter()
            .map(|f| {
                if apply_filter(&mut Seek::default(), f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let seek = seek_from_filters(filters);
        let predicate = match (self.options.follow, conjunction(filters.iter().cloned())) {
            (true, Some(expr)) => {
                let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
                Some(state.create_physical_expr(expr, &df_schema)?)
            }
            _ => None,
        };
        let table = self.clone();
        let ranges = tokio::task::spawn_blocking(move || table.plan_ranges(&seek))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))??;
        // two consumers per core: one decodes while the other's prefetch queue refills
        // (measured: 4 partitions on 2 cores, 1.80 s with 2 consumers, 1.35 s with 4)
        let readers = 2 * state.config().target_partitions();
        Ok(Arc::new(KafkaExec::new(
            self.clone(),
            ranges,
            readers,
            projection.cloned(),
            predicate,
            limit,
        )?))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::Plan(format!(
                "{}: a topic can only be appended to (INSERT INTO), not {insert_op}",
                self.target()
            )));
        }
        let transactions = match (&self.options.transactional, &self.options.transactional_id) {
            (false, _) => Transactions::Off,
            (true, Some(id)) => Transactions::Fixed(id.clone()),
            (true, None) => Transactions::Unique(format!("vcfq-{}", self.topic)),
        };
        let sink = KafkaSink {
            target: self.target(),
            topic: self.topic.clone(),
            config: self.producer_config(),
            transactions,
            timeout: self.options.timeout,
            pool: Arc::clone(&self.producers),
        };
        let encoder = Encoder::new(self.options.format, Arc::clone(&self.variant));
        let data_sink = TopicDataSink::new(Arc::new(sink), encoder, Arc::clone(&self.schema));
        Ok(Arc::new(DataSinkExec::new(
            input,
            Arc::new(data_sink),
            None,
        )))
    }
}

/// The offsets one partition is read between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    /// Kafka partition.
    pub partition: i32,
    /// First offset read.
    pub start: i64,
    /// First offset not read (`None`: follow).
    pub end: Option<i64>,
}

/// Reads Kafka partitions: at most two consumers per `target_partitions`, each reading a
/// group of partitions, one DataFusion partition each.
#[derive(Debug)]
pub struct KafkaExec {
    table: KafkaTable,
    /// Kafka partitions to read, grouped: one group per DataFusion partition (one consumer).
    groups: Vec<Vec<PartitionRange>>,
    projection: Option<Vec<usize>>,
    /// Filters applied by the reader itself (follow mode), over the full schema.
    predicate: Option<Arc<dyn PhysicalExpr>>,
    limit: Option<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl KafkaExec {
    fn new(
        table: KafkaTable,
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
        let schema = match &projection {
            Some(p) => Arc::new(table.schema.project(p)?),
            None => Arc::clone(&table.schema),
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(groups.len()),
            EmissionType::Incremental,
            if table.options.follow {
                Boundedness::Unbounded {
                    requires_infinite_memory: false,
                }
            } else {
                Boundedness::Bounded
            },
        ));
        Ok(KafkaExec {
            table,
            groups,
            projection,
            predicate,
            limit,
            schema,
            properties,
        })
    }
}

impl DisplayAs for KafkaExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let ranges: Vec<String> = self
            .groups
            .iter()
            .flatten()
            .map(|r| match r.end {
                Some(end) => format!("{}:{}..{}", r.partition, r.start, end),
                None => format!("{}:{}..", r.partition, r.start),
            })
            .collect();
        write!(
            f,
            "KafkaExec: {}, partitions=[{}], mode={}",
            self.table.target(),
            ranges.join(", "),
            if self.table.options.follow {
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

impl ExecutionPlan for KafkaExec {
    fn name(&self) -> &str {
        "KafkaExec"
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
        let name = format!(
            "kafka-{}-{}",
            self.table.topic,
            ranges.first().map_or(0, |r| r.partition)
        );
        let partitions: Vec<String> = ranges.iter().map(|r| r.partition.to_string()).collect();
        let target = format!("{} partition {}", self.table.target(), partitions.join(","));
        let reader = PartitionReader {
            table: self.table.clone(),
            ranges,
            projection: self.projection.clone(),
            predicate: self.predicate.clone(),
            limit: self.limit,
            target: target.clone(),
            batches: 0,
        };
        let started = readers::spawn(name, target.clone(), move |out| reader.run(out))?;
        Ok(readers::ordered_stream(
            schema,
            vec![started],
            vec![target],
            None,
        ))
    }
}

/// Reads a group of partitions with one consumer on its own thread, sending batches until
/// every partition reaches its end offset (or LIMIT, or the query is dropped), and says which
/// of these ended it (see [`crate::readers`]).
struct PartitionReader {
    table: KafkaTable,
    ranges: Vec<PartitionRange>,
    projection: Option<Vec<usize>>,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    limit: Option<usize>,
    /// `kafka host:port/topic partition 0,2`, for errors.
    target: String,
    /// Batches sent so far.
    batches: usize,
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
        let batch = decoder
            .flush()
            .map_err(|e| StreamError::permanent(self.table.target(), e))?;
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
        readers::fault_point(|| self.target.clone(), self.batches);
        self.batches += 1;
        Ok(out.send(batch) == Flow::Continue)
    }

    fn read(&mut self, out: &Outlet) -> Result<Ending> {
        let table = self.table.clone();
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
        let consumer: BaseConsumer = table
            .consumer_config()
            .create()
            .map_err(|e| table.error("cannot create a consumer", e))?;
        let mut tpl = TopicPartitionList::new();
        for r in &open {
            tpl.add_partition_offset(&table.topic, r.partition, Offset::Offset(r.start))
                .map_err(|e| table.error("bad offset", e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| table.error("cannot read the topic's partitions", e))?;
        let mut decoder = Decoder::new(
            table.options.format,
            table.options.on_error,
            Arc::clone(&table.variant),
            table.target(),
        );
        let mut sent = 0usize;
        let limit = self.limit;
        let done = |sent: usize| limit.is_some_and(|l| sent >= l);
        // a snapshot partition is finished at its end offset or at end of partition
        let finish = |open: &mut Vec<PartitionRange>, partition: i32| {
            open.retain(|r| r.partition != partition);
            let mut paused = TopicPartitionList::new();
            paused.add_partition(&table.topic, partition);
            let _ = consumer.pause(&paused);
        };
        while !open.is_empty() {
            if out.is_closed() {
                return Ok(Ending::Abandoned);
            }
            match consumer.poll(Duration::from_millis(100)) {
                None => {
                    if !decoder.is_empty() && !self.send(out, &mut decoder, &mut sent)? {
                        return Ok(Ending::Abandoned);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    let follow = open
                        .iter()
                        .any(|r| r.partition == partition && r.end.is_none());
                    if !follow {
                        finish(&mut open, partition);
                    } else if !decoder.is_empty() && !self.send(out, &mut decoder, &mut sent)? {
                        return Ok(Ending::Abandoned);
                    }
                }
                Some(Err(e)) => return Err(table.error("reading failed", e).into()),
                Some(Ok(m)) => {
                    let (partition, offset) = (m.partition(), m.offset());
                    let Some(range) = open.iter().find(|r| r.partition == partition).copied()
                    else {
                        continue;
                    };
                    if range.end.is_some_and(|end| offset >= end) {
                        finish(&mut open, partition);
                        continue;
                    }
                    decoder.push(InMessage {
                        partition,
                        offset,
                        timestamp: m.timestamp().to_millis(),
                        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        value: m.payload().map(<[u8]>::to_vec),
                    });
                    if range.end.is_some_and(|end| offset + 1 >= end) {
                        finish(&mut open, partition);
                    }
                    let enough = limit.is_some_and(|l| sent + decoder.len() >= l);
                    if decoder.len() >= BATCH_ROWS || open.is_empty() || enough {
                        if !self.send(out, &mut decoder, &mut sent)? {
                            return Ok(Ending::Abandoned);
                        }
                        if done(sent) {
                            return Ok(Ending::LimitReached);
                        }
                    }
                }
            }
        }
        if !self.send(out, &mut decoder, &mut sent)? {
            return Ok(Ending::Abandoned);
        }
        if decoder.skipped > 0 {
            log::warn!(
                "{}: skipped {} message(s) that do not decode",
                table.target(),
                decoder.skipped
            );
        }
        Ok(Ending::Finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn filters_on_partition_offset_and_timestamp_become_seek_positions() {
        let seek = seek_from_filters(&[
            col("_partition").in_list(vec![lit(1), lit(2)], false),
            col("_partition").eq(lit(2)),
            col("_offset").gt_eq(lit(10i64)),
            col("_offset").lt(lit(50i64)),
            lit(20i64).lt(col("_offset")),
            col("chrom").eq(lit("chr1")),
        ]);
        assert_eq!(
            seek,
            Seek {
                partitions: Some(vec![2]),
                from_offset: Some(21),
                to_offset: Some(50),
                from_timestamp: None,
            }
        );
        let between = seek_from_filters(&[col("_offset").between(lit(5i64), lit(9i64))]);
        assert_eq!(
            (between.from_offset, between.to_offset),
            (Some(5), Some(10))
        );
        assert!(!apply_filter(
            &mut Seek::default(),
            &col("pos").gt(lit(5i64))
        ));
    }
}
