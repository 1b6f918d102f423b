//! The Iggy [`TopicSink`]: each row goes to the partition of its variant key
//! ([`partition_of`]: one variant, one partition), as a message whose id comes from key and
//! content ([`crate::stream::codec::message_id`]) and whose `key` header holds the key.
//! Messages are sent in chunks as rows arrive (memory stays bounded by a few input batches)
//! over [`CONNECTIONS`] connections at once, each partition always over the same one and each
//! chunk acknowledged before that connection sends the next (so a partition keeps row order).
//! Before an `INSERT` reports success, every partition it wrote is flushed to disk with fsync
//! (`flush_unsaved_buffer`), so a success survives a `kill -9` of the server; a checkpoint
//! (coordinated writes) flushes over connections of its own while sending goes on. An `INSERT`
//! that fails leaves what was acknowledged before the failure in the topic (Iggy has no
//! transactions); a re-send of those rows has the same ids.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, BytesMut};
use iggy::prelude::{
    HeaderKey, HeaderKind, IggyMessage, IggyMessageHeader, IggyTimestamp, MAX_PAYLOAD_SIZE,
    MessageClient, Partitioning, TcpClient,
};

use super::IggyPlatform;
use super::KEY_HEADER;
use super::client::{self, bounded, close, connect};
use crate::stream::StreamError;
use crate::stream::codec::{OutMessage, partition_of};
use crate::stream::sink::{Checkpoint, Messages, TopicSink, TopicWriter};

/// Messages per send request at most.
const CHUNK_MESSAGES: usize = 4096;
/// Payload bytes per send request at most (a chunk is sent once it reaches this).
const CHUNK_BYTES: usize = 4 << 20;
/// Connections of one write (at most one per partition).
const CONNECTIONS: usize = 2;

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
        let platform = &self.platform;
        // the topic's partitions, over the table's spare client (no login after CREATE)
        let details = client::with_client(
            &platform.spare,
            &platform.endpoint,
            &target,
            |c| async move { platform.details(&c).await },
        )
        .await?
        .ok_or_else(|| StreamError::permanent(&target, "topic does not exist"))?;
        if details.partitions_count == 0 {
            return Err(StreamError::permanent(target, "topic has no partitions"));
        }
        let key = HeaderKey::from_str(KEY_HEADER)
            .map_err(|e| client::error(&target, "bad header key", &e))?;
        // more connections, so that one chunk is sent while another one is acknowledged;
        // connected (and logged in) at the same time
        let lanes = (details.partitions_count as usize).min(CONNECTIONS);
        let connected =
            futures::future::join_all((0..lanes).map(|_| connect(&platform.endpoint, &target)))
                .await;
        let mut clients = Vec::with_capacity(lanes);
        let mut failed = None;
        for c in connected {
            match c {
                Ok(client) => clients.push(client),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        if let Some(e) = failed {
            for client in clients {
                close(client, platform.endpoint.timeout).await;
            }
            return Err(e);
        }
        Ok(Box::new(IggyWriter {
            platform: self.platform.clone(),
            target,
            clients,
            settlers: Arc::new(tokio::sync::Mutex::new(Vec::new())),
            failed: false,
            partitions: details.partitions_count,
            key_header: key_header(&key),
            written: BTreeSet::new(),
            delivered: 0,
        }))
    }
}

struct IggyWriter {
    platform: IggyPlatform,
    target: String,
    /// One connection per lane; partition `p` is written through connection
    /// `p % clients.len()`, so each partition's chunks go out in order.
    clients: Vec<TcpClient>,
    /// Connections that flush to disk while `clients` go on sending ([`TopicWriter::checkpoint`];
    /// opened by the first checkpoint, one per lane).
    settlers: Arc<tokio::sync::Mutex<Vec<TcpClient>>>,
    /// Whether a call failed (the SDK may still hold the connections; they are not used again).
    failed: bool,
    partitions: u32,
    /// The user headers of a message up to its key's length and bytes ([`key_header`]).
    key_header: Vec<u8>,
    /// Partitions written to since the last flush to disk.
    written: BTreeSet<u32>,
    delivered: u64,
}

/// The user headers of a message holding one string header `key`, up to the value's length:
/// the SDK's layout (kind, length, bytes of the key; kind, length, bytes of the value), which
/// `IggyMessage`'s builder would otherwise make through a map for every message.
fn key_header(key: &HeaderKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.as_bytes().len() + 6);
    out.push(key.kind().as_code());
    out.put_u32_le(key.as_bytes().len() as u32);
    out.extend_from_slice(key.as_bytes());
    out.push(HeaderKind::String.as_code());
    out
}

/// Sends `chunks` (each to its partition) one after the other over `client`, each
/// acknowledged before the next.
async fn send_chunks(
    platform: &IggyPlatform,
    target: &str,
    client: &TcpClient,
    chunks: Vec<(u32, Vec<IggyMessage>)>,
) -> Result<u64, StreamError> {
    let stream = platform.stream_id()?;
    let topic = platform.topic_id()?;
    let mut sent = 0u64;
    for (partition, mut chunk) in chunks {
        bounded(
            &format!("{target} partition {partition}"),
            "messages not acknowledged",
            platform.endpoint.timeout,
            client.send_messages(
                &stream,
                &topic,
                &Partitioning::partition_id(partition),
                &mut chunk,
            ),
        )
        .await?;
        sent += chunk.len() as u64;
    }
    Ok(sent)
}

/// Flushes (fsync) each partition in `written` over the connection of its lane, the lanes at
/// the same time.
async fn flush(
    platform: &IggyPlatform,
    target: &str,
    clients: &[TcpClient],
    written: &BTreeSet<u32>,
) -> Result<(), StreamError> {
    let stream = platform.stream_id()?;
    let topic = platform.topic_id()?;
    let timeout = platform.endpoint.timeout;
    let lanes = clients.len().max(1);
    let (stream, topic) = (&stream, &topic);
    let flushes = clients.iter().enumerate().map(|(lane, client)| {
        let partitions: Vec<u32> = written
            .iter()
            .copied()
            .filter(|p| *p as usize % lanes == lane)
            .collect();
        async move {
            for partition in partitions {
                bounded(
                    &format!("{target} partition {partition}"),
                    "messages not saved to disk",
                    timeout,
                    client.flush_unsaved_buffer(stream, topic, partition, true),
                )
                .await?;
            }
            Ok::<(), StreamError>(())
        }
    });
    let results = futures::future::join_all(flushes).await;
    results
        .into_iter()
        .find_map(Result::err)
        .map_or(Ok(()), Err)
}

impl IggyWriter {
    /// Closes every connection (a settle connection still busy with a checkpoint is left to
    /// it: it drops the connection when it ends).
    async fn close_all(&mut self) {
        let timeout = self.platform.endpoint.timeout;
        let mut clients = std::mem::take(&mut self.clients);
        if let Ok(mut settlers) = self.settlers.try_lock() {
            clients.extend(settlers.drain(..));
        }
        for client in clients {
            close(client, timeout).await;
        }
    }

    fn usable(&self) -> Result<(), StreamError> {
        if self.failed {
            return Err(StreamError::permanent(
                &self.target,
                "writer used after a failure",
            ));
        }
        Ok(())
    }

    /// The message for `m`, its key header written to `headers` (a buffer the messages of
    /// one send share) and sent at `now`.
    fn message(
        &self,
        m: &OutMessage,
        headers: &mut BytesMut,
        now: u64,
    ) -> Result<IggyMessage, StreamError> {
        if m.value.is_empty() || m.value.len() > MAX_PAYLOAD_SIZE as usize {
            return Err(StreamError::permanent(
                &self.target,
                format!(
                    "cannot make a message of {} bytes (Iggy takes 1 to {MAX_PAYLOAD_SIZE})",
                    m.value.len()
                ),
            ));
        }
        // a header value holds 1 to 255 bytes: a longer key travels in the payload only
        let user_headers = match &m.key {
            Some(key) if !key.is_empty() && key.len() <= 255 => {
                headers.extend_from_slice(&self.key_header);
                headers.put_u32_le(key.len() as u32);
                headers.extend_from_slice(key.as_bytes());
                Some(headers.split().freeze())
            }
            _ => None,
        };
        Ok(IggyMessage {
            header: IggyMessageHeader {
                checksum: 0,
                id: m.id,
                offset: 0,
                timestamp: 0,
                origin_timestamp: now,
                user_headers_length: user_headers.as_ref().map_or(0, |h| h.len() as u32),
                payload_length: m.value.len() as u32,
                reserved: 0,
            },
            payload: m.value.clone(),
            user_headers,
        })
    }

    /// Sends each lane's chunks over its connection, the lanes at the same time.
    async fn send_lanes(
        &mut self,
        lanes: Vec<Vec<(u32, Vec<IggyMessage>)>>,
    ) -> Result<(), StreamError> {
        for chunks in &lanes {
            self.written.extend(chunks.iter().map(|(p, _)| *p));
        }
        let sends = lanes
            .into_iter()
            .zip(&self.clients)
            .filter(|(chunks, _)| !chunks.is_empty())
            .map(|(chunks, client)| send_chunks(&self.platform, &self.target, client, chunks));
        let results = futures::future::join_all(sends).await;
        for result in results {
            match result {
                Ok(sent) => self.delivered += sent,
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl TopicWriter for IggyWriter {
    async fn send(&mut self, messages: Messages) -> Result<(), StreamError> {
        self.usable()?;
        // per partition, in row order, cut into chunks; each chunk on its partition's lane
        let mut lanes: Vec<Vec<(u32, Vec<IggyMessage>)>> =
            (0..self.clients.len()).map(|_| Vec::new()).collect();
        let mut open: BTreeMap<u32, (Vec<IggyMessage>, usize)> = BTreeMap::new();
        let count = lanes.len().max(1);
        let lane_of = |partition: u32| partition as usize % count;
        let now = IggyTimestamp::now().as_micros();
        let mut headers = BytesMut::with_capacity(messages.len() * (self.key_header.len() + 48));
        for m in messages.iter() {
            let partition = partition_of(m.key.as_deref(), self.partitions);
            let size = m.value.len();
            let message = self.message(m, &mut headers, now)?;
            let (chunk, bytes) = open.entry(partition).or_default();
            chunk.push(message);
            *bytes += size;
            if chunk.len() >= CHUNK_MESSAGES || *bytes >= CHUNK_BYTES {
                let full = std::mem::take(chunk);
                *bytes = 0;
                lanes[lane_of(partition)].push((partition, full));
            }
        }
        for (partition, (chunk, _)) in open {
            if !chunk.is_empty() {
                lanes[lane_of(partition)].push((partition, chunk));
            }
        }
        self.send_lanes(lanes).await
    }

    fn checkpoint(&mut self) -> Option<Checkpoint> {
        if let Err(e) = self.usable() {
            return Some(Box::pin(async move { Err(e) }));
        }
        // flushed over connections of its own, so that sending goes on meanwhile (a data
        // connection answers one request at a time)
        let written = std::mem::take(&mut self.written);
        let platform = self.platform.clone();
        let target = self.target.clone();
        let settlers = Arc::clone(&self.settlers);
        let lanes = self.clients.len();
        Some(Box::pin(async move {
            let mut clients = settlers.lock().await;
            while clients.len() < lanes {
                clients.push(connect(&platform.endpoint, &target).await?);
            }
            let flushed = flush(&platform, &target, &clients, &written).await;
            if flushed.is_err() {
                // a connection that failed or timed out is not used again
                for client in clients.drain(..) {
                    close(client, platform.endpoint.timeout).await;
                }
            }
            flushed
        }))
    }

    async fn settle(&mut self) -> Result<(), StreamError> {
        self.usable()?;
        // nothing is being sent: the data connections flush
        let written = std::mem::take(&mut self.written);
        let flushed = flush(&self.platform, &self.target, &self.clients, &written).await;
        if flushed.is_err() {
            self.failed = true;
        }
        flushed
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StreamError> {
        let settled = self.settle().await;
        self.close_all().await;
        settled.map(|()| self.delivered)
    }

    async fn abort(mut self: Box<Self>) {
        self.close_all().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy::prelude::HeaderValue;

    #[test]
    fn key_headers_are_laid_out_as_the_sdk_lays_them_out() {
        let key = HeaderKey::from_str(KEY_HEADER).unwrap();
        let prefix = key_header(&key);
        for value in ["chr1:850:G:T", "x", &"A".repeat(255), "ünï:1:A:<DEL>"] {
            let built = IggyMessage::builder()
                .payload(bytes::Bytes::from_static(b"{}"))
                .user_headers(BTreeMap::from([(
                    key.clone(),
                    HeaderValue::from_str(value).unwrap(),
                )]))
                .build()
                .unwrap();
            let mut ours = prefix.clone();
            ours.put_u32_le(value.len() as u32);
            ours.extend_from_slice(value.as_bytes());
            assert_eq!(built.user_headers.as_deref(), Some(&ours[..]), "{value}");
            assert_eq!(built.header.user_headers_length as usize, ours.len());
        }
    }
}
