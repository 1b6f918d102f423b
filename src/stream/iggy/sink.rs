//! The Iggy [`TopicSink`]: each row goes to the partition of its variant key
//! ([`partition_of`]: one variant, one partition), as a message whose id comes from key and
//! content ([`crate::stream::codec::message_id`]) and whose `key` header holds the key.
//! Messages are sent in chunks as rows arrive (memory stays bounded by one input batch), each
//! chunk acknowledged before the next. Before an `INSERT` reports success, every partition it
//! wrote is flushed to disk with fsync (`flush_unsaved_buffer`), so a success survives a
//! `kill -9` of the server. An `INSERT` that fails leaves what was acknowledged before the
//! failure in the topic (Iggy has no transactions); a re-send of those rows has the same ids.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::str::FromStr;

use async_trait::async_trait;
use iggy::prelude::{HeaderKey, HeaderValue, IggyMessage, MessageClient, Partitioning, TcpClient};

use super::IggyPlatform;
use super::KEY_HEADER;
use super::client::{self, bounded, close, connect};
use crate::stream::StreamError;
use crate::stream::codec::{OutMessage, partition_of};
use crate::stream::sink::{TopicSink, TopicWriter};

/// Messages per send request at most.
const CHUNK_MESSAGES: usize = 4096;
/// Payload bytes per send request at most (a chunk is sent once it reaches this).
const CHUNK_BYTES: usize = 4 << 20;

/// Writes to one Iggy topic.
#[derive(Debug, Clone)]
pub struct IggySink {
    platform: IggyPlatform,
}

impl IggySink {
    /// A sink for the topic of `platform`.
    pub fn new(platform: IggyPlatform) -> Self {
        IggySink { platform }
    }
}

#[async_trait]
impl TopicSink for IggySink {
    fn target(&self) -> String {
        self.platform.target_name()
    }

    async fn open(&self) -> Result<Box<dyn TopicWriter>, StreamError> {
        let target = self.target();
        let client = connect(&self.platform.endpoint, &target).await?;
        let details = match self.platform.details(&client).await {
            Ok(Some(details)) => details,
            Ok(None) => {
                close(client, self.platform.endpoint.timeout).await;
                return Err(StreamError::permanent(target, "topic does not exist"));
            }
            Err(e) => {
                close(client, self.platform.endpoint.timeout).await;
                return Err(e);
            }
        };
        if details.partitions_count == 0 {
            close(client, self.platform.endpoint.timeout).await;
            return Err(StreamError::permanent(target, "topic has no partitions"));
        }
        let key = HeaderKey::from_str(KEY_HEADER)
            .map_err(|e| client::error(&target, "bad header key", &e))?;
        Ok(Box::new(IggyWriter {
            platform: self.platform.clone(),
            target,
            client: Some(client),
            partitions: details.partitions_count,
            key,
            written: BTreeSet::new(),
            delivered: 0,
        }))
    }
}

struct IggyWriter {
    platform: IggyPlatform,
    target: String,
    /// `None` once a call failed (the SDK may still hold the connection).
    client: Option<TcpClient>,
    partitions: u32,
    key: HeaderKey,
    /// Partitions written to, flushed at the end.
    written: BTreeSet<u32>,
    delivered: u64,
}

impl IggyWriter {
    fn client(&self) -> Result<&TcpClient, StreamError> {
        self.client
            .as_ref()
            .ok_or_else(|| StreamError::permanent(&self.target, "writer used after a failure"))
    }

    /// Sends one chunk to `partition` and waits for the server's acknowledgement.
    async fn send_chunk(
        &mut self,
        partition: u32,
        chunk: &mut Vec<IggyMessage>,
    ) -> Result<(), StreamError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let stream = self.platform.stream_id()?;
        let topic = self.platform.topic_id()?;
        let sent = bounded(
            &format!("{} partition {partition}", self.target),
            "messages not acknowledged",
            self.platform.endpoint.timeout,
            self.client()?.send_messages(
                &stream,
                &topic,
                &Partitioning::partition_id(partition),
                chunk,
            ),
        )
        .await;
        if let Err(e) = sent {
            self.client = None;
            return Err(e);
        }
        self.written.insert(partition);
        self.delivered += chunk.len() as u64;
        chunk.clear();
        Ok(())
    }

    fn message(&self, m: OutMessage) -> Result<IggyMessage, StreamError> {
        let headers = match &m.key {
            Some(key) if !key.is_empty() && key.len() <= 255 => {
                let value = HeaderValue::from_str(key)
                    .map_err(|e| client::error(&self.target, "bad key", &e))?;
                Some(BTreeMap::from([(self.key.clone(), value)]))
            }
            _ => None,
        };
        IggyMessage::builder()
            .id(m.id)
            .payload(m.value)
            .maybe_user_headers(headers)
            .build()
            .map_err(|e| client::error(&self.target, "cannot make a message", &e))
    }
}

#[async_trait]
impl TopicWriter for IggyWriter {
    async fn send(&mut self, messages: Vec<OutMessage>) -> Result<(), StreamError> {
        // per partition, in row order
        let mut chunks: BTreeMap<u32, (Vec<IggyMessage>, usize)> = BTreeMap::new();
        for m in messages {
            let partition = partition_of(m.key.as_deref(), self.partitions);
            let size = m.value.len();
            let message = self.message(m)?;
            let (chunk, bytes) = chunks.entry(partition).or_default();
            chunk.push(message);
            *bytes += size;
            if chunk.len() >= CHUNK_MESSAGES || *bytes >= CHUNK_BYTES {
                let mut full = std::mem::take(chunk);
                *bytes = 0;
                self.send_chunk(partition, &mut full).await?;
            }
        }
        for (partition, (mut chunk, _)) in chunks {
            self.send_chunk(partition, &mut chunk).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StreamError> {
        let stream = self.platform.stream_id()?;
        let topic = self.platform.topic_id()?;
        let written: Vec<u32> = self.written.iter().copied().collect();
        for partition in written {
            let flushed = bounded(
                &format!("{} partition {partition}", self.target),
                "messages not saved to disk",
                self.platform.endpoint.timeout,
                self.client()?
                    .flush_unsaved_buffer(&stream, &topic, partition, true),
            )
            .await;
            if let Err(e) = flushed {
                self.client = None;
                return Err(e);
            }
        }
        if let Some(client) = self.client.take() {
            close(client, self.platform.endpoint.timeout).await;
        }
        Ok(self.delivered)
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(client) = self.client.take() {
            close(client, self.platform.endpoint.timeout).await;
        }
    }
}
