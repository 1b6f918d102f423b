//! The Kafka [`TopicSink`]: an idempotent producer (`enable.idempotence`, `acks=all`) that waits
//! for every delivery report; optionally transactional (one `INSERT`, one transaction).

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use super::{TopicSink, TopicWriter};
use crate::stream::StreamError;
use crate::stream::codec::OutMessage;

/// Deliveries awaited before queueing more (librdkafka's own queue is bounded too).
const MAX_IN_FLIGHT: usize = 100_000;

/// Writes to one Kafka topic.
#[derive(Debug, Clone)]
pub struct KafkaSink {
    /// `kafka host:port/topic`, for messages.
    pub target: String,
    /// Topic name.
    pub topic: String,
    /// Producer settings (bootstrap servers, idempotence, user settings).
    pub config: Vec<(String, String)>,
    /// Transactional id when each write is a transaction.
    pub transactional_id: Option<String>,
    /// Timeout of transaction calls.
    pub timeout: Duration,
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
        let mut config = ClientConfig::new();
        for (k, v) in &self.config {
            config.set(k, v);
        }
        if let Some(id) = &self.transactional_id {
            config.set("transactional.id", id);
        }
        let producer: FutureProducer = config
            .create()
            .map_err(|e| self.error("cannot create a producer", e))?;
        if self.transactional_id.is_some() {
            let p = producer.clone();
            let timeout = self.timeout;
            tokio::task::spawn_blocking(move || {
                p.init_transactions(timeout)?;
                p.begin_transaction()
            })
            .await
            .map_err(|e| StreamError::permanent(self.target.clone(), e))?
            .map_err(|e| self.error("cannot begin a transaction", e))?;
        }
        Ok(Box::new(KafkaWriter {
            sink: self.clone(),
            producer,
            in_flight: VecDeque::new(),
            delivered: 0,
        }))
    }
}

struct KafkaWriter {
    sink: KafkaSink,
    producer: FutureProducer,
    in_flight: VecDeque<DeliveryFuture>,
    delivered: u64,
}

impl KafkaWriter {
    /// Waits for the oldest delivery report.
    async fn settle_one(&mut self) -> Result<(), StreamError> {
        let Some(future) = self.in_flight.pop_front() else {
            return Ok(());
        };
        match future.await {
            Ok(Ok(_)) => {
                self.delivered += 1;
                Ok(())
            }
            Ok(Err((e, _message))) => Err(self.sink.error("message not delivered", e)),
            Err(_) => Err(StreamError::transient(
                self.sink.target.clone(),
                "producer went away before reporting delivery",
            )),
        }
    }
}

#[async_trait]
impl TopicWriter for KafkaWriter {
    async fn send(&mut self, messages: Vec<OutMessage>) -> Result<(), StreamError> {
        for message in &messages {
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

    async fn finish(mut self: Box<Self>) -> Result<u64, StreamError> {
        while !self.in_flight.is_empty() {
            if let Err(e) = self.settle_one().await {
                self.abort().await;
                return Err(e);
            }
        }
        if self.sink.transactional_id.is_some() {
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
        Ok(self.delivered)
    }

    async fn abort(self: Box<Self>) {
        if self.sink.transactional_id.is_some() {
            let p = self.producer.clone();
            let timeout = self.sink.timeout;
            let _ = tokio::task::spawn_blocking(move || p.abort_transaction(timeout)).await;
        }
        // without a transaction, messages already delivered stay; the rest are dropped
        self.producer
            .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
    }
}
