//! Reads a group of Iggy partitions by explicit offset (nothing is committed or stored on the
//! server), over one connection of its own, from its reader thread. Each round asks every open
//! partition for up to [`POLL_MESSAGES`] messages from where it stands; a partition that gives
//! none has caught up. The next round is asked for as soon as a round's answers are in, before
//! they are decoded: an I/O thread of the source's own (a one-worker runtime) waits for the
//! server and takes its answer apart while the reader decodes the round before (at most two
//! rounds in memory).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use iggy::prelude::{
    Consumer, HeaderKey, Identifier, MessageClient, PolledMessages, PollingStrategy, TcpClient,
};
use tokio::task::JoinHandle;

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
    /// Next offset to ask for.
    next: u64,
    /// First offset not read (`None`: follow).
    end: Option<u64>,
}

/// A request on its way: the partition, and the answer to come.
type InFlight = (u32, JoinHandle<Result<PolledMessages, StreamError>>);

/// One reader's connection and positions.
pub struct IggySource {
    platform: IggyPlatform,
    runtime: tokio::runtime::Runtime,
    client: Option<Arc<TcpClient>>,
    stream: Identifier,
    topic: Identifier,
    consumer: Consumer,
    key: HeaderKey,
    /// Whether keys are read (from the user headers).
    keys: bool,
    cursors: Vec<Cursor>,
    /// The round asked for and not yet taken.
    in_flight: Vec<InFlight>,
    /// Whether the last round found nothing anywhere.
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("iggy-poll")
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
            client: Some(Arc::new(client)),
            key,
            keys,
            in_flight: Vec::new(),
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

impl IggySource {
    /// Asks every open partition for its next messages (answers awaited by [`Self::take`]).
    fn ask(&mut self) {
        let Some(client) = &self.client else {
            return;
        };
        let target = self.platform.target_name();
        let timeout = self.platform.endpoint.timeout;
        for cursor in &self.cursors {
            let count = match cursor.end {
                Some(end) => end
                    .saturating_sub(cursor.next)
                    .min(u64::from(POLL_MESSAGES)) as u32,
                None => POLL_MESSAGES,
            };
            if count == 0 {
                continue;
            }
            let (client, stream, topic, consumer) = (
                Arc::clone(client),
                self.stream.clone(),
                self.topic.clone(),
                self.consumer.clone(),
            );
            let (partition, next) = (cursor.partition, cursor.next);
            let what = format!("{target} partition {partition}");
            let request = self.runtime.spawn(async move {
                bounded(
                    &what,
                    "cannot read messages",
                    timeout,
                    client.poll_messages(
                        &stream,
                        &topic,
                        Some(partition),
                        &consumer,
                        &PollingStrategy::offset(next),
                        count,
                        false,
                    ),
                )
                .await
            });
            self.in_flight.push((partition, request));
        }
    }

    /// The answers of the round asked for, per partition still open.
    fn take(&mut self) -> Result<Vec<(u32, PolledMessages)>, StreamError> {
        let target = self.platform.target_name();
        let mut answers = Vec::with_capacity(self.in_flight.len());
        for (partition, request) in std::mem::take(&mut self.in_flight) {
            let answer = match self.runtime.block_on(request) {
                Ok(answer) => answer,
                Err(e) => Err(StreamError::permanent(
                    &target,
                    format!("partition {partition}: the read stopped: {e}"),
                )),
            };
            match answer {
                Ok(polled) => answers.push((partition, polled)),
                Err(e) => {
                    // a client whose call failed or timed out is not used again
                    self.client = None;
                    self.abort();
                    return Err(e);
                }
            }
        }
        Ok(answers)
    }

    /// Stops the requests on their way (and waits until they let go of the client).
    fn abort(&mut self) {
        for (_, request) in self.in_flight.drain(..) {
            request.abort();
            let _ = self.runtime.block_on(request);
        }
    }
}

impl PartitionSource for IggySource {
    fn poll(&mut self, events: &mut Vec<Event>) -> Result<(), StreamError> {
        if self.client.is_none() {
            return Err(StreamError::permanent(
                self.platform.target_name(),
                "reader used after a failure",
            ));
        }
        if self.idle {
            std::thread::sleep(IDLE_WAIT);
        }
        if self.in_flight.is_empty() {
            self.ask();
        }
        let answers = self.take()?;
        // where each open partition goes on from, then the next round asked for at once
        let mut any = false;
        for (partition, polled) in &answers {
            if let Some(last) = polled.messages.last()
                && let Some(cursor) = self.cursors.iter_mut().find(|c| c.partition == *partition)
            {
                cursor.next = last.header.offset + 1;
                any = true;
            }
        }
        let asked: Vec<u32> = answers.iter().map(|(p, _)| *p).collect();
        self.idle = !any;
        if any {
            self.ask();
        }
        for (partition, polled) in answers {
            if !self.cursors.iter().any(|c| c.partition == partition) {
                // closed while its answer was on its way
                continue;
            }
            if polled.messages.is_empty() {
                events.push(Event::CaughtUp(partition as i32));
                continue;
            }
            for m in polled.messages {
                events.push(self.message(partition, m)?);
            }
        }
        // a partition with nothing to ask for (its end reached) has caught up too
        for cursor in &self.cursors {
            if !asked.contains(&cursor.partition)
                && cursor.end.is_some_and(|end| cursor.next >= end)
            {
                events.push(Event::CaughtUp(cursor.partition as i32));
            }
        }
        Ok(())
    }

    fn close(&mut self, partition: i32) {
        self.cursors.retain(|c| c.partition as i32 != partition);
    }
}

impl Drop for IggySource {
    fn drop(&mut self) {
        self.abort();
        if let Some(client) = self.client.take().and_then(Arc::into_inner) {
            let timeout = self.platform.endpoint.timeout.min(Duration::from_secs(1));
            self.runtime.block_on(close(client, timeout));
        }
    }
}
