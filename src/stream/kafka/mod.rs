//! Kafka topics as tables: `CREATE EXTERNAL TABLE t STORED AS KAFKA LOCATION 'host:port/topic'`.
//!
//! The Kafka [`Platform`]: metadata and watermarks through rdkafka's `BaseConsumer`, reads
//! through one consumer per reader ([`KafkaSource`]: its partitions assigned at their start
//! offsets, end of partition reported), writes through [`sink::KafkaSink`]. A snapshot ends at
//! the high watermarks taken when the query is planned; `_timestamp` positions come from
//! `offsets_for_times`.

pub mod sink;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use self::sink::{KafkaSink, ProducerPool, Transactions, is_retryable};
use super::StreamError;
use super::codec::InMessage;
use super::options::{Start, TopicOptions, parse_kafka_location};
use super::platform::{Event, PartitionRange, PartitionSource, Platform};
use super::seek::Seek;
use super::sink::TopicSink;

/// Messages taken from a consumer per [`PartitionSource::poll`] at most.
const POLL_MESSAGES: usize = 4096;

/// A Kafka topic.
#[derive(Debug, Clone)]
pub struct KafkaPlatform {
    servers: String,
    topic: String,
    options: TopicOptions,
    /// Producers kept between the table's `INSERT`s.
    producers: Arc<ProducerPool>,
}

impl KafkaPlatform {
    /// The topic at `host:port[,host:port…]/topic` (nothing is contacted yet).
    pub fn new(location: &str, options: TopicOptions) -> Result<Self, crate::VcfError> {
        let (servers, topic) = parse_kafka_location(location)?;
        Ok(KafkaPlatform {
            servers,
            topic,
            options,
            producers: Arc::new(ProducerPool::default()),
        })
    }

    /// `kafka host:port/topic`.
    fn target_name(&self) -> String {
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
            // a consumer prefetches up to 64 MiB by default; 8 MiB keeps reads as fast (one
            // consumer per core) and memory bounded
            .set("queued.max.messages.kbytes", "8192")
            // once that prefetch is full librdkafka waits 1 s by default before fetching
            // again, which left the readers idle half the time (2M messages: 4.5 s → 2.8 s)
            .set("fetch.queue.backoff.ms", "10");
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
            target: self.target_name(),
            message: format!("{what}: {e}"),
            retryable: is_retryable(&e),
        }
    }

    /// Checks the broker answers; makes the topic when missing.
    fn ensure_topic_blocking(&self) -> std::result::Result<(), StreamError> {
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
                    self.target_name(),
                    format!("cannot create the topic: {code}"),
                ));
            }
        }
        Ok(())
    }

    /// Start and end offsets of each partition read, from watermarks taken now.
    fn plan_ranges_blocking(
        &self,
        seek: &Seek,
    ) -> std::result::Result<Vec<PartitionRange>, StreamError> {
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
                self.target_name(),
                "topic does not exist",
            ));
        };
        if let Some(e) = topic.error() {
            return Err(StreamError::permanent(
                self.target_name(),
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
            ranges.push(seek.range(partition, start, high, self.options.follow));
        }
        Ok(ranges)
    }
}

#[async_trait]
impl Platform for KafkaPlatform {
    fn target(&self) -> String {
        self.target_name()
    }

    fn scan_name(&self) -> &'static str {
        "KafkaExec"
    }

    async fn ensure_topic(&self) -> Result<(), StreamError> {
        let probe = self.clone();
        tokio::task::spawn_blocking(move || probe.ensure_topic_blocking())
            .await
            .map_err(|e| StreamError::permanent(self.target_name(), e))?
    }

    async fn plan_ranges(&self, seek: &Seek) -> Result<Vec<PartitionRange>, StreamError> {
        let probe = self.clone();
        let seek = seek.clone();
        tokio::task::spawn_blocking(move || probe.plan_ranges_blocking(&seek))
            .await
            .map_err(|e| StreamError::permanent(self.target_name(), e))?
    }

    fn open_source(
        &self,
        ranges: &[PartitionRange],
        keys: bool,
    ) -> Result<Box<dyn PartitionSource>, StreamError> {
        let consumer: BaseConsumer = self
            .consumer_config()
            .create()
            .map_err(|e| self.error("cannot create a consumer", e))?;
        let mut tpl = TopicPartitionList::new();
        for r in ranges {
            tpl.add_partition_offset(&self.topic, r.partition, Offset::Offset(r.start))
                .map_err(|e| self.error("bad offset", e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| self.error("cannot read the topic's partitions", e))?;
        Ok(Box::new(KafkaSource {
            platform: self.clone(),
            consumer,
            keys,
        }))
    }

    fn sink(&self) -> Result<Arc<dyn TopicSink>, StreamError> {
        let transactions = match (&self.options.transactional, &self.options.transactional_id) {
            (false, _) => Transactions::Off,
            (true, Some(id)) => Transactions::Fixed(id.clone()),
            (true, None) => Transactions::Unique(format!("vcfq-{}", self.topic)),
        };
        Ok(Arc::new(KafkaSink {
            target: self.target_name(),
            topic: self.topic.clone(),
            config: self.producer_config(),
            transactions,
            timeout: self.options.timeout,
            pool: Arc::clone(&self.producers),
        }))
    }
}

/// One consumer reading its assigned partitions.
struct KafkaSource {
    platform: KafkaPlatform,
    consumer: BaseConsumer,
    /// Whether keys are read.
    keys: bool,
}

impl KafkaSource {
    /// Turns one poll result into an event; `None` when nothing came. A message's value is
    /// copied to the end of `values` and its place noted in `places` (with the event's
    /// index), to become a slice of one buffer per poll ([`Self::poll`]) instead of an
    /// allocation per message.
    fn event(
        &self,
        polled: Option<Result<rdkafka::message::BorrowedMessage<'_>, KafkaError>>,
        values: &mut Vec<u8>,
        places: &mut Vec<(usize, std::ops::Range<usize>)>,
        index: usize,
    ) -> Result<Option<Event>, StreamError> {
        match polled {
            None => Ok(None),
            Some(Err(KafkaError::PartitionEOF(partition))) => Ok(Some(Event::CaughtUp(partition))),
            Some(Err(e)) => Err(self.platform.error("reading failed", e)),
            Some(Ok(m)) => {
                if let Some(payload) = m.payload() {
                    let start = values.len();
                    values.extend_from_slice(payload);
                    places.push((index, start..values.len()));
                }
                Ok(Some(Event::Message(InMessage {
                    partition: m.partition(),
                    offset: m.offset(),
                    timestamp: m.timestamp().to_millis(),
                    key: m
                        .key()
                        .filter(|_| self.keys)
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    id: None,
                    value: None,
                })))
            }
        }
    }
}

impl PartitionSource for KafkaSource {
    fn poll(&mut self, events: &mut Vec<Event>) -> Result<(), StreamError> {
        let first = self.consumer.poll(Duration::from_millis(100));
        if first.is_none() {
            return Ok(());
        }
        let mut values = Vec::with_capacity(256 * 1024);
        let mut places = Vec::new();
        let Some(event) = self.event(first, &mut values, &mut places, events.len())? else {
            return Ok(());
        };
        events.push(event);
        // then whatever is already fetched, without waiting
        while events.len() < POLL_MESSAGES {
            let next = self.consumer.poll(Duration::ZERO);
            match self.event(next, &mut values, &mut places, events.len())? {
                Some(event) => events.push(event),
                None => break,
            }
        }
        // the values, as slices of one buffer
        let values = bytes::Bytes::from(values);
        for (index, range) in places {
            if let Some(Event::Message(m)) = events.get_mut(index) {
                m.value = Some(values.slice(range));
            }
        }
        Ok(())
    }

    fn close(&mut self, partition: i32) {
        let mut paused = TopicPartitionList::new();
        paused.add_partition(&self.platform.topic, partition);
        let _ = self.consumer.pause(&paused);
    }
}
