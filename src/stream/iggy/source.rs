//! Reads a group of Iggy partitions by explicit offset (nothing is committed or stored on the
//! server), over one connection of its own, on its reader thread (a small runtime drives the
//! async SDK there). Each poll asks every open partition for up to [`POLL_MESSAGES`] messages
//! from where it stands; a partition that gives none has caught up.

use std::str::FromStr;
use std::time::Duration;

use iggy::prelude::{Consumer, HeaderKey, Identifier, MessageClient, PollingStrategy, TcpClient};

use super::client::{bounded, close, connect};
use super::{IggyPlatform, KEY_HEADER};
use crate::stream::StreamError;
use crate::stream::codec::InMessage;
use crate::stream::platform::{Event, PartitionRange, PartitionSource};

/// Messages asked of a partition per request at most.
pub const POLL_MESSAGES: u32 = 4096;

/// How long a followed topic with nothing new waits before asking again.
const IDLE_WAIT: Duration = Duration::from_millis(100);

struct Cursor {
    partition: u32,
    /// Next offset to read.
    next: u64,
    /// First offset not read (`None`: follow).
    end: Option<u64>,
}

/// One reader's connection and positions.
pub struct IggySource {
    platform: IggyPlatform,
    runtime: tokio::runtime::Runtime,
    client: Option<TcpClient>,
    stream: Identifier,
    topic: Identifier,
    consumer: Consumer,
    key: HeaderKey,
    /// Whether keys are read (from the user headers).
    keys: bool,
    cursors: Vec<Cursor>,
    /// Whether the last poll found nothing anywhere.
    idle: bool,
}

impl IggySource {
    /// Connects and positions itself at each range's start; `keys`: whether keys are read.
    pub fn open(
        platform: IggyPlatform,
        ranges: &[PartitionRange],
        keys: bool,
    ) -> Result<Self, StreamError> {
        let target = platform.target_name();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StreamError::permanent(&target, format!("cannot start a reader: {e}")))?;
        let client = runtime.block_on(connect(&platform.endpoint, &target))?;
        let key = HeaderKey::from_str(KEY_HEADER)
            .map_err(|e| super::client::error(&target, "bad header key", &e))?;
        Ok(IggySource {
            stream: platform.stream_id()?,
            topic: platform.topic_id()?,
            consumer: platform.consumer()?,
            cursors: ranges
                .iter()
                .map(|r| Cursor {
                    partition: r.partition as u32,
                    next: r.start.max(0) as u64,
                    end: r.end.map(|e| e.max(0) as u64),
                })
                .collect(),
            platform,
            runtime,
            client: Some(client),
            key,
            keys,
            idle: false,
        })
    }

    fn message(&self, partition: u32, m: iggy::prelude::IggyMessage) -> Result<Event, StreamError> {
        let headers = if self.keys {
            m.user_headers_map()
        } else {
            Ok(None)
        };
        let key = match headers {
            Ok(Some(headers)) => headers
                .get(&self.key)
                .and_then(|v| v.as_str().ok().map(str::to_string)),
            Ok(None) => None,
            Err(e) => {
                return Err(super::client::error(
                    &self.platform.target_name(),
                    &format!(
                        "partition {partition} offset {}: bad user headers",
                        m.header.offset
                    ),
                    &e,
                ));
            }
        };
        Ok(Event::Message(InMessage {
            partition: partition as i32,
            offset: m.header.offset as i64,
            timestamp: Some((m.header.timestamp / 1000) as i64),
            key,
            id: Some(m.header.id),
            value: Some(m.payload),
        }))
    }
}

impl PartitionSource for IggySource {
    fn poll(&mut self, events: &mut Vec<Event>) -> Result<(), StreamError> {
        if self.idle {
            std::thread::sleep(IDLE_WAIT);
        }
        let target = self.platform.target_name();
        let timeout = self.platform.endpoint.timeout;
        let Some(client) = &self.client else {
            return Err(StreamError::permanent(
                target,
                "reader used after a failure",
            ));
        };
        let mut any = false;
        let mut polled_all = Vec::with_capacity(self.cursors.len());
        for cursor in &self.cursors {
            let count = match cursor.end {
                Some(end) => end
                    .saturating_sub(cursor.next)
                    .min(u64::from(POLL_MESSAGES)) as u32,
                None => POLL_MESSAGES,
            };
            if count == 0 {
                polled_all.push((cursor.partition, Vec::new()));
                continue;
            }
            let polled = self.runtime.block_on(bounded(
                &format!("{target} partition {}", cursor.partition),
                "cannot read messages",
                timeout,
                client.poll_messages(
                    &self.stream,
                    &self.topic,
                    Some(cursor.partition),
                    &self.consumer,
                    &PollingStrategy::offset(cursor.next),
                    count,
                    false,
                ),
            ));
            let polled = match polled {
                Ok(p) => p,
                Err(e) => {
                    // a client whose call failed or timed out is not used again
                    self.client = None;
                    return Err(e);
                }
            };
            polled_all.push((cursor.partition, polled.messages));
        }
        for (partition, messages) in polled_all {
            if messages.is_empty() {
                events.push(Event::CaughtUp(partition as i32));
                continue;
            }
            any = true;
            let last = messages.last().map_or(0, |m| m.header.offset);
            if let Some(cursor) = self.cursors.iter_mut().find(|c| c.partition == partition) {
                cursor.next = last + 1;
            }
            for m in messages {
                events.push(self.message(partition, m)?);
            }
        }
        self.idle = !any;
        Ok(())
    }

    fn close(&mut self, partition: i32) {
        self.cursors.retain(|c| c.partition as i32 != partition);
    }
}

impl Drop for IggySource {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let timeout = self.platform.endpoint.timeout.min(Duration::from_secs(1));
            self.runtime.block_on(close(client, timeout));
        }
    }
}
