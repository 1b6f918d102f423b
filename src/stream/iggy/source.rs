//! Reads a group of Iggy partitions by explicit offset (nothing is committed or stored on the
//! server), over one connection of its own, from its reader thread. Each request asks a
//! partition for up to [`POLL_MESSAGES`] messages; a partition that gives none has caught up.
//! An I/O thread of the source's own (a one-worker runtime) sends requests and waits for the
//! server while the reader decodes answers. A snapshot partition has up to [`AHEAD`] requests
//! on their way at once, for the windows of offsets that follow one another up to its end, so
//! the connection is never idle while the reader decodes; an answer that ends before its window
//! does (or a window's messages are gone) drops the requests after it, which are asked again
//! from where the answer ended. A followed partition has one request at a time. A request's
//! time bound (`timeout.ms`) counts from when it was asked for, its wait behind the others on
//! the connection included.
//!
//! Answers are taken apart here, not by the SDK: a poll is sent with the SDK's wire encoding
//! and its answer comes back as one buffer, each message's value a slice of it. (The SDK's
//! `poll_messages` makes three reference-counted slices and a struct per message on the I/O
//! thread, which the reader then drops: a tenth of a `count(*)`'s time went there.)

use std::collections::VecDeque;
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

/// Requests on their way to one snapshot partition at most.
pub const AHEAD: usize = 3;

/// How long a followed topic with nothing new waits before asking again.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Where one partition is read and what was asked of it ahead (offsets only; the requests
/// themselves are kept beside it).
#[derive(Debug, PartialEq)]
struct Window {
    /// First offset not taken yet.
    next: u64,
    /// First offset not asked for yet.
    asked: u64,
    /// First offset not read (`None`: follow).
    end: Option<u64>,
    /// Where each request on its way starts, oldest first.
    starts: VecDeque<u64>,
}

impl Window {
    fn new(start: u64, end: Option<u64>) -> Self {
        Window {
            next: start,
            asked: start,
            end,
            starts: VecDeque::new(),
        }
    }

    /// The request that may go now, as (first offset, count): the window after those on
    /// their way, up to the end (one at a time when followed).
    fn request(&self) -> Option<(u64, u32)> {
        match self.end {
            Some(end) if self.starts.len() < AHEAD && self.asked < end => Some((
                self.asked,
                (end - self.asked).min(u64::from(POLL_MESSAGES)) as u32,
            )),
            None if self.starts.is_empty() => Some((self.asked, POLL_MESSAGES)),
            _ => None,
        }
    }

    /// `request()` was sent.
    fn sent(&mut self, start: u64, count: u32) {
        self.starts.push_back(start);
        self.asked = start + u64::from(count);
    }

    /// The oldest request was answered, its last message at `last` (`None`: no message);
    /// true when the requests after it are to be dropped (they do not start where it ended),
    /// and asked again.
    fn answered(&mut self, last: Option<u64>) -> bool {
        self.starts.pop_front();
        if let Some(last) = last {
            self.next = self.next.max(last + 1);
        }
        let stale = self.starts.front().is_some_and(|s| *s != self.next);
        if stale || self.starts.is_empty() {
            self.starts.clear();
            self.asked = self.next;
        }
        stale
    }
}

/// A partition read: its window, and the answers to come of the requests on their way (in
/// the order of [`Window::starts`]).
struct Partition {
    id: u32,
    window: Window,
    requests: VecDeque<JoinHandle<Result<Bytes, StreamError>>>,
}

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
    partitions: Vec<Partition>,
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
            partitions: ranges
                .iter()
                .map(|r| Partition {
                    id: r.partition as u32,
                    window: Window::new(r.start.max(0) as u64, r.end.map(|e| e.max(0) as u64)),
                    requests: VecDeque::new(),
                })
                .collect(),
            platform,
            runtime,
            client: Some(Arc::new(client)),
            key,
            keys,
            idle: false,
        })
    }

    /// The messages of one poll's `answer` for `partition` (in offset order) from offset
    /// `from` on as events; the offset of the answer's last message (`None`: it had none).
    fn messages(
        &self,
        partition: u32,
        from: u64,
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
            last = Some(offset);
            if offset < from {
                // taken from an answer before (windows overlap where messages are gone)
                continue;
            }
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
    /// Sends every request that may go now ([`Window::request`]).
    fn ask(&mut self) {
        let Some(client) = &self.client else {
            return;
        };
        let target = self.platform.target_name();
        let timeout = self.platform.endpoint.timeout;
        for partition in &mut self.partitions {
            while let Some((start, count)) = partition.window.request() {
                let request = PollMessagesRequest {
                    consumer: self.consumer.clone(),
                    stream_id: self.stream.clone(),
                    topic_id: self.topic.clone(),
                    partition_id: Some(partition.id),
                    strategy: polling_strategy_to_wire(&PollingStrategy::offset(start)),
                    count,
                    auto_commit: false,
                }
                .to_bytes();
                let client = Arc::clone(client);
                let what = format!("{target} partition {}", partition.id);
                partition.requests.push_back(self.runtime.spawn(async move {
                    bounded(
                        &what,
                        "cannot read messages",
                        timeout,
                        client.send_raw_with_response(POLL_MESSAGES_CODE, request),
                    )
                    .await
                }));
                partition.window.sent(start, count);
            }
        }
    }

    /// The answer to the oldest request of partition `index` (`None`: none is on its way).
    fn take(&mut self, index: usize) -> Result<Option<Bytes>, StreamError> {
        let partition = &mut self.partitions[index];
        let Some(request) = partition.requests.pop_front() else {
            return Ok(None);
        };
        let id = partition.id;
        let answer = match self.runtime.block_on(request) {
            Ok(answer) => answer,
            Err(e) => Err(StreamError::permanent(
                self.platform.target_name(),
                format!("partition {id}: the read stopped: {e}"),
            )),
        };
        match answer {
            Ok(answer) => Ok(Some(answer)),
            Err(e) => {
                // a client whose call failed or timed out is not used again
                self.client = None;
                for index in 0..self.partitions.len() {
                    self.drop_requests(index);
                }
                Err(e)
            }
        }
    }

    /// Stops the requests on their way to partition `index` (and waits until they let go of
    /// the client).
    fn drop_requests(&mut self, index: usize) {
        for request in std::mem::take(&mut self.partitions[index].requests) {
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
        self.ask();
        // the oldest answer of each partition; what may go next is asked for at once, so the
        // server works on it while the reader decodes these
        let mut any = false;
        for index in 0..self.partitions.len() {
            let Some(answer) = self.take(index)? else {
                // nothing to ask for: its end was reached
                let partition = &self.partitions[index];
                if partition
                    .window
                    .end
                    .is_some_and(|end| partition.window.next >= end)
                {
                    events.push(Event::CaughtUp(partition.id as i32));
                }
                continue;
            };
            let (id, from) = (
                self.partitions[index].id,
                self.partitions[index].window.next,
            );
            let last = self.messages(id, from, &answer, events)?;
            if self.partitions[index].window.answered(last) {
                self.drop_requests(index);
            }
            match last {
                Some(_) => any = true,
                None => events.push(Event::CaughtUp(id as i32)),
            }
        }
        self.idle = !any;
        if any {
            self.ask();
        }
        Ok(())
    }

    fn close(&mut self, partition: i32) {
        if let Some(index) = self
            .partitions
            .iter()
            .position(|p| p.id as i32 == partition)
        {
            self.drop_requests(index);
            self.partitions.remove(index);
        }
    }
}

impl Drop for IggySource {
    fn drop(&mut self) {
        for index in 0..self.partitions.len() {
            self.drop_requests(index);
        }
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
    fn a_snapshot_window_asks_ahead_up_to_its_end_and_again_after_a_short_answer() {
        let full = u64::from(POLL_MESSAGES);
        let mut w = Window::new(10, Some(10 + 2 * full + 5));
        let mut asked = Vec::new();
        while let Some((start, count)) = w.request() {
            w.sent(start, count);
            asked.push((start, count));
        }
        let count = POLL_MESSAGES;
        assert_eq!(
            asked,
            vec![(10, count), (10 + full, count), (10 + 2 * full, 5)],
            "three windows, the last up to the end"
        );
        // a whole answer: the next request starts where it ended
        assert!(!w.answered(Some(10 + full - 1)));
        assert_eq!(w.next, 10 + full);
        // a short one (messages gone, or fewer given): the rest is asked again from its end
        assert!(w.answered(Some(10 + full + 99)));
        assert_eq!((w.next, w.asked), (10 + full + 100, 10 + full + 100));
        assert!(w.starts.is_empty());
        assert_eq!(w.request(), Some((10 + full + 100, count - 95)));
        w.sent(10 + full + 100, count - 95);
        assert_eq!(w.request(), None, "asked up to the end");
    }

    #[test]
    fn an_answer_past_its_window_moves_the_window_on_and_a_followed_one_asks_once() {
        // the first messages are gone: the answer starts later and overlaps the next window
        let mut w = Window::new(0, Some(10_000));
        while let Some((start, count)) = w.request() {
            w.sent(start, count);
        }
        assert_eq!(w.starts.len(), AHEAD);
        assert!(w.answered(Some(u64::from(POLL_MESSAGES) + 50)));
        assert_eq!(w.next, u64::from(POLL_MESSAGES) + 51);
        // an empty answer changes nothing but what is asked
        let mut w = Window::new(7, Some(100));
        w.sent(7, 93);
        assert_eq!(w.request(), None, "nothing left to ask");
        assert!(!w.answered(None));
        assert_eq!((w.next, w.asked), (7, 7));
        // followed: one request at a time, from where the last answer ended
        let mut f = Window::new(5, None);
        assert_eq!(f.request(), Some((5, POLL_MESSAGES)));
        f.sent(5, POLL_MESSAGES);
        assert_eq!(f.request(), None);
        assert!(!f.answered(Some(8)));
        assert_eq!(f.request(), Some((9, POLL_MESSAGES)));
        assert!(!f.answered(None));
    }

    #[test]
    fn the_key_is_the_string_header_of_its_name_among_others() {
        let key = HeaderKey::from_str(KEY_HEADER).unwrap();
        let text = |s: &str| HeaderValue::from_str(s).unwrap();
        let cases = [
            (
                vec![(KEY_HEADER, text("chr1:850:G:T"))],
                Some("chr1:850:G:T"),
            ),
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
