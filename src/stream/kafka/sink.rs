//! The Kafka [`TopicSink`]: an idempotent producer (`enable.idempotence`, `acks=all`) that waits
//! for every delivery report; optionally transactional (one `INSERT`, one transaction).
//!
//! Producers are kept between statements ([`ProducerPool`]): a table's next `INSERT` reuses an
//! idle one (no new connections, no new `init_transactions`). Each transactional producer has
//! a transactional id of its own, so concurrent `INSERT`s (in one session, several sessions or
//! several processes) never fence each other; a `transactional.id` the user sets is used as
//! is, and then one `INSERT` at a time uses it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use crate::stream::StreamError;
use crate::stream::sink::{Checkpoint, Messages, TopicSink, TopicWriter};

/// Deliveries awaited before queueing more (librdkafka's own queue is bounded too).
const MAX_IN_FLIGHT: usize = 100_000;

/// How a table's writes are transactional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transactions {
    /// Plain idempotent writes.
    Off,
    /// One transaction per `INSERT`, each producer with a transactional id of its own, made
    /// from this prefix.
    Unique(String),
    /// One transaction per `INSERT` with this transactional id (set by the user): one
    /// `INSERT` at a time.
    Fixed(String),
}

/// Producers of one table, idle between statements.
pub struct ProducerPool {
    idle: Mutex<Vec<FutureProducer>>,
    /// Held by the writer using a fixed transactional id.
    fixed: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for ProducerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.idle.lock().map_or(0, |p| p.len());
        f.debug_struct("ProducerPool").field("idle", &idle).finish()
    }
}

impl Default for ProducerPool {
    fn default() -> Self {
        ProducerPool {
            idle: Mutex::new(Vec::new()),
            fixed: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }
}

/// Idle producers kept at most per table.
const IDLE_PRODUCERS: usize = 4;

impl ProducerPool {
    fn take(&self) -> Option<FutureProducer> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put(&self, producer: FutureProducer) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_PRODUCERS {
            idle.push(producer);
        }
    }
}

/// A transactional id no other producer has: `prefix-<16 random hex digits>`.
pub fn unique_transactional_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // no randomness: the process id and the time still tell processes apart
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (nanos ^ u64::from(std::process::id()) << 32).to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// Writes to one Kafka topic.
#[derive(Debug, Clone)]
pub struct KafkaSink {
    /// `kafka host:port/topic`, for messages.
    pub target: String,
    /// Topic name.
    pub topic: String,
    /// Producer settings (bootstrap servers, idempotence, user settings).
    pub config: Vec<(String, String)>,
    /// Whether and how each write is a transaction.
    pub transactions: Transactions,
    /// Timeout of transaction calls.
    pub timeout: Duration,
    /// The table's producers.
    pub pool: Arc<ProducerPool>,
}

/// Whether retrying can help after this error.
pub fn is_retryable(e: &KafkaError) -> bool {
    match e.rdkafka_error_code() {
        Some(code) => matches!(
            code,
            RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::NotEnoughReplicas
                | RDKafkaErrorCode::NotEnoughReplicasAfterAppend
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::QueueFull
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::Resolve
        ),
        None => false,
    }
}

impl KafkaSink {
    fn error(&self, what: &str, e: KafkaError) -> StreamError {
        let retryable = is_retryable(&e);
        StreamError {
            target: self.target.clone(),
            message: format!("{what}: {e}"),
            retryable,
        }
    }
}

#[async_trait]
impl TopicSink for KafkaSink {
    fn target(&self) -> String {
        self.target.clone()
    }

    async fn open(&self) -> Result<Box<dyn TopicWriter>, StreamError> {
        let permit = match &self.transactions {
            Transactions::Fixed(_) => Some(
                Arc::clone(&self.pool.fixed)
                    .acquire_owned()
                    .await
                    .map_err(|e| StreamError::permanent(self.target.clone(), e))?,
            ),
            _ => None,
        };
        let producer = match self.pool.take() {
            Some(p) => p,
            None => self.new_producer().await?,
        };
        if self.transactions != Transactions::Off {
            let p = producer.clone();
            tokio::task::spawn_blocking(move || p.begin_transaction())
                .await
                .map_err(|e| StreamError::permanent(self.target.clone(), e))?
                .map_err(|e| self.error("cannot begin a transaction", e))?;
        }
        Ok(Box::new(KafkaWriter {
            sink: self.clone(),
            producer,
            in_flight: VecDeque::new(),
            delivered: Arc::new(AtomicU64::new(0)),
            _permit: permit,
        }))
    }
}

impl KafkaSink {
    /// A producer with this sink's settings (transactions initialised when they are on).
    async fn new_producer(&self) -> Result<FutureProducer, StreamError> {
        let mut config = ClientConfig::new();
        for (k, v) in &self.config {
            config.set(k, v);
        }
        let id = match &self.transactions {
            Transactions::Off => None,
            Transactions::Unique(prefix) => Some(unique_transactional_id(prefix)),
            Transactions::Fixed(id) => Some(id.clone()),
        };
        if let Some(id) = &id {
            config.set("transactional.id", id);
        }
        let producer: FutureProducer = config
            .create()
            .map_err(|e| self.error("cannot create a producer", e))?;
        if id.is_some() {
            let p = producer.clone();
            let timeout = self.timeout;
            tokio::task::spawn_blocking(move || p.init_transactions(timeout))
                .await
                .map_err(|e| StreamError::permanent(self.target.clone(), e))?
                .map_err(|e| self.error("cannot initialise transactions", e))?;
        }
        Ok(producer)
    }
}

struct KafkaWriter {
    sink: KafkaSink,
    producer: FutureProducer,
    in_flight: VecDeque<DeliveryFuture>,
    /// Messages whose delivery was reported (shared with checkpoints in progress).
    delivered: Arc<AtomicU64>,
    /// The right to use a fixed transactional id, while writing.
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What became of one delivery report.
async fn delivered(sink: &KafkaSink, future: DeliveryFuture) -> Result<(), StreamError> {
    match future.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _message))) => Err(sink.error("message not delivered", e)),
        Err(_) => Err(StreamError::transient(
            sink.target.clone(),
            "producer went away before reporting delivery",
        )),
    }
}

impl KafkaWriter {
    /// Waits for the oldest delivery report.
    async fn settle_one(&mut self) -> Result<(), StreamError> {
        let Some(future) = self.in_flight.pop_front() else {
            return Ok(());
        };
        delivered(&self.sink, future).await?;
        self.delivered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait]
impl TopicWriter for KafkaWriter {
    async fn send(&mut self, messages: Messages) -> Result<(), StreamError> {
        for message in messages.iter() {
            loop {
                let mut record: FutureRecord<'_, str, [u8]> =
                    FutureRecord::to(&self.sink.topic).payload(&message.value);
                if let Some(key) = &message.key {
                    record = record.key(key.as_str());
                }
                match self.producer.send_result(record) {
                    Ok(future) => {
                        self.in_flight.push_back(future);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // the local queue is full: wait for a delivery, then try again
                        if self.in_flight.is_empty() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        } else {
                            self.settle_one().await?;
                        }
                    }
                    Err((e, _)) => return Err(self.sink.error("cannot queue a message", e)),
                }
            }
            while self.in_flight.len() > MAX_IN_FLIGHT {
                self.settle_one().await?;
            }
        }
        Ok(())
    }

    async fn settle(&mut self) -> Result<(), StreamError> {
        match self.checkpoint() {
            Some(checkpoint) => checkpoint.await,
            None => Ok(()),
        }
    }

    fn checkpoint(&mut self) -> Option<Checkpoint> {
        // the delivery reports of everything sent so far, awaited in order
        let in_flight = std::mem::take(&mut self.in_flight);
        let sink = self.sink.clone();
        let count = Arc::clone(&self.delivered);
        Some(Box::pin(async move {
            for future in in_flight {
                delivered(&sink, future).await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }))
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StreamError> {
        if let Err(e) = self.settle().await {
            self.abort().await;
            return Err(e);
        }
        if self.sink.transactions != Transactions::Off {
            let p = self.producer.clone();
            let timeout = self.sink.timeout;
            let committed = tokio::task::spawn_blocking(move || p.commit_transaction(timeout))
                .await
                .map_err(|e| StreamError::permanent(self.sink.target.clone(), e))?;
            if let Err(e) = committed {
                let error = self.sink.error("cannot commit the transaction", e);
                self.abort().await;
                return Err(error);
            }
        }
        // every message is delivered: the producer can serve the table's next INSERT
        self.sink.pool.put(self.producer.clone());
        Ok(self.delivered.load(Ordering::Relaxed))
    }

    async fn abort(self: Box<Self>) {
        // the producer is not reused: it may be in a state only a new one is free of
        if self.sink.transactions != Transactions::Off {
            let p = self.producer.clone();
            let timeout = self.sink.timeout;
            let _ = tokio::task::spawn_blocking(move || p.abort_transaction(timeout)).await;
        }
        // without a transaction, messages already delivered stay; the rest are dropped
        self.producer
            .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
    }
}
