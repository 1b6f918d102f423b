//! Reads a group of Iggy partitions by explicit offset (nothing is committed or stored on the
//! server), over one connection of its own, from its reader thread. Each round asks every open
//! partition for up to [`POLL_MESSAGES`] messages from where it stands; a partition that gives
//! none has caught up. The next round is asked for as soon as a round's answers are in, before
//! they are decoded: an I/O thread of the source's own (a one-worker runtime) waits for the
//! server while the reader decodes the round before (at most two rounds in memory).
//!
//! Answers are taken apart here, not by the SDK: a poll is sent with the SDK's wire encoding
//! and its answer comes back as one buffer, each message's value a slice of it. (The SDK's
//! `poll_messages` makes three reference-counted slices and a struct per message on the I/O
//! thread, which the reader then drops: a tenth of a `count(*)`'s time went there.)

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use iggy::prelude::{HeaderKey, HeaderKind, IggyError, PollingStrategy, TcpClient};
use iggy_binary_protocol::codes::POLL_MESSAGES_CODE;
use iggy_binary_protocol::requests::messages::PollMessagesRequest;
use iggy_binary_protocol::responses::messages::PollMessagesResponse;
use iggy_binary_protocol::{
    WireConsumer, WireEncode, WireIdentifier, WireUserHeaderIterator, validate_user_headers,
};
use iggy_common::BinaryTransport;
use iggy_common::wire_conversions::{
    consumer_to_wire, identifier_to_wire, polling_strategy_to_wire,
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

/// A request on its way: the partition, and the answer to come (the poll's answer as sent).
type InFlight = (u32, JoinHandle<Result<Bytes, StreamError>>);

/// One reader's connection and positions.
pub struct IggySource {
    platform: IggyPlatform,
    runtime: tokio::runtime::Runtime,
    client: Option<Arc<TcpClient>>,
    stream: WireIdentifier,
    topic: WireIdentifier,
    consumer: WireConsumer,
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
        let wire = |what: &str, e: IggyError| super::client::error(&target, what, &e);
        Ok(IggySource {
            stream: identifier_to_wire(&platform.stream_id()?)
                .map_err(|e| wire("bad stream", e))?,
            topic: identifier_to_wire(&platform.topic_id()?).map_err(|e| wire("bad topic", e))?,
            consumer: consumer_to_wire(&platform.consumer()?)
                .map_err(|e| wire("bad consumer", e))?,
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

    /// The messages of one poll's `answer` for `partition` (in offset order) as events; the
    /// offset of the last one (`None`: there was none).
    fn messages(
        &self,
        partition: u32,
        answer: &Bytes,
        events: &mut Vec<Event>,
    ) -> Result<Option<u64>, StreamError> {
        if answer.is_empty() {
            // the server's answer to a poll that found nothing may have no body
            return Ok(None);
        }
        let bad = |what: String| {
            StreamError::permanent(
                self.platform.target_name(),
                format!("partition {partition}: {what}"),
            )
        };
        let response = PollMessagesResponse::decode(answer)
            .map_err(|e| bad(format!("bad answer to a poll: {e}")))?;
        let mut last = None;
        for view in response.messages {
            let view = view.map_err(|e| bad(format!("bad message in a poll's answer: {e}")))?;
            let offset = view.offset();
            let key = if self.keys {
                key_of(&self.key, view.user_headers())
                    .map_err(|e| bad(format!("offset {offset}: bad user headers: {e}")))?
            } else {
                None
            };
            events.push(Event::Message(InMessage {
                partition: partition as i32,
                offset: offset as i64,
                timestamp: Some((view.timestamp() / 1000) as i64),
                key,
                id: Some(view.id()),
                value: Some(answer.slice_ref(view.payload())),
            }));
            last = Some(offset);
        }
        Ok(last)
    }
}

/// The text of the header named `key` in a message's user headers as sent (`None`: there is
/// none, or it is not a string).
fn key_of(
    key: &HeaderKey,
    headers: &[u8],
) -> Result<Option<String>, iggy_binary_protocol::WireError> {
    if headers.is_empty() {
        return Ok(None);
    }
    validate_user_headers(headers)?;
    let string = HeaderKind::String.as_code();
    Ok(WireUserHeaderIterator::new(headers)
        .find(|h| h.key_kind.0 == key.kind().as_code() && h.key == key.as_bytes())
        .filter(|h| h.value_kind.0 == string)
        .and_then(|h| std::str::from_utf8(h.value).ok().map(str::to_string)))
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
            let (partition, next) = (cursor.partition, cursor.next);
            let request = PollMessagesRequest {
                consumer: self.consumer.clone(),
                stream_id: self.stream.clone(),
                topic_id: self.topic.clone(),
                partition_id: Some(partition),
                strategy: polling_strategy_to_wire(&PollingStrategy::offset(next)),
                count,
                auto_commit: false,
            }
            .to_bytes();
            let client = Arc::clone(client);
            let what = format!("{target} partition {partition}");
            let request = self.runtime.spawn(async move {
                bounded(
                    &what,
                    "cannot read messages",
                    timeout,
                    client.send_raw_with_response(POLL_MESSAGES_CODE, request),
                )
                .await
            });
            self.in_flight.push((partition, request));
        }
    }

    /// The answers of the round asked for, per partition still open.
    fn take(&mut self) -> Result<Vec<(u32, Bytes)>, StreamError> {
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
        // the round's messages, where each open partition goes on from, then the next round
        // asked for at once (decoding them overlaps with the server's work on it)
        let mut any = false;
        let mut asked = Vec::with_capacity(answers.len());
        for (partition, answer) in &answers {
            asked.push(*partition);
            if !self.cursors.iter().any(|c| c.partition == *partition) {
                // closed while its answer was on its way
                continue;
            }
            match self.messages(*partition, answer, events)? {
                Some(last) => {
                    if let Some(cursor) =
                        self.cursors.iter_mut().find(|c| c.partition == *partition)
                    {
                        cursor.next = last + 1;
                    }
                    any = true;
                }
                None => events.push(Event::CaughtUp(*partition as i32)),
            }
        }
        self.idle = !any;
        if any {
            self.ask();
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use iggy::prelude::{HeaderValue, IggyMessage};

    use super::*;

    /// User headers as the SDK lays them out.
    fn headers(pairs: &[(&str, HeaderValue)]) -> Vec<u8> {
        let map: BTreeMap<HeaderKey, HeaderValue> = pairs
            .iter()
            .map(|(k, v)| (HeaderKey::from_str(k).unwrap(), v.clone()))
            .collect();
        let message = IggyMessage::builder()
            .payload(Bytes::from_static(b"{}"))
            .user_headers(map)
            .build()
            .unwrap();
        message.user_headers.map(|h| h.to_vec()).unwrap_or_default()
    }

    #[test]
    fn the_key_is_the_string_header_of_its_name_among_others() {
        let key = HeaderKey::from_str(KEY_HEADER).unwrap();
        let text = |s: &str| HeaderValue::from_str(s).unwrap();
        let cases = [
            (vec![(KEY_HEADER, text("chr1:850:G:T"))], Some("chr1:850:G:T")),
            (
                vec![
                    ("a", text("x")),
                    (KEY_HEADER, text("chr2:1:A:<DEL>")),
                    ("z", HeaderValue::from(7u64)),
                ],
                Some("chr2:1:A:<DEL>"),
            ),
            (vec![("other", text("chr1:850:G:T"))], None),
            (vec![(KEY_HEADER, HeaderValue::from(7u64))], None),
            (vec![], None),
        ];
        for (pairs, want) in cases {
            let got = key_of(&key, &headers(&pairs)).unwrap();
            assert_eq!(got.as_deref(), want, "{pairs:?}");
        }
        // headers cut short are an error, not a missing key
        let whole = headers(&[(KEY_HEADER, text("chr1:850:G:T"))]);
        assert!(key_of(&key, &whole[..whole.len() - 3]).is_err());
    }
}
