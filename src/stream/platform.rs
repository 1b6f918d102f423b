//! What a streaming platform (Kafka, Iggy) provides to the platform-neutral topic table:
//! topic metadata ([`Platform`]), a reader of partitions ([`PartitionSource`]) and a writer
//! ([`super::sink::TopicSink`]). Everything else — options, columns, codecs, filter pushdown,
//! ordered parallel reads, LIMIT, follow mode — is the same for every platform.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::StreamError;
use super::codec::InMessage;
use super::seek::Seek;
use super::sink::TopicSink;

/// The offsets one partition is read between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    /// Partition (0-based on both platforms).
    pub partition: i32,
    /// First offset read.
    pub start: i64,
    /// First offset not read (`None`: follow).
    pub end: Option<i64>,
}

/// What a [`PartitionSource`] saw.
#[derive(Debug)]
pub enum Event {
    /// A message.
    Message(InMessage),
    /// The partition has no more messages for now (its current end was reached).
    CaughtUp(i32),
}

/// Reads a group of partitions, on a reader thread of its own (calls may block).
pub trait PartitionSource: Send {
    /// Waits a little (about 100 ms at most) for messages and appends what came to `events`
    /// (nothing: nothing came yet).
    fn poll(&mut self, events: &mut Vec<Event>) -> Result<(), StreamError>;

    /// Stops reading `partition` (it reached its end).
    fn close(&mut self, partition: i32);
}

/// One platform's access to one topic.
#[async_trait]
pub trait Platform: fmt::Debug + Send + Sync + 'static {
    /// What the topic is, for messages and plans: `kafka 127.0.0.1:9092/calls`,
    /// `iggy 127.0.0.1:8090/genomics/calls`. Never holds credentials.
    fn target(&self) -> String;

    /// The scan's name in plans: `KafkaExec`, `IggyExec`.
    fn scan_name(&self) -> &'static str;

    /// Whether messages carry an id of their own (the `_id` column).
    fn has_message_ids(&self) -> bool {
        false
    }

    /// Checks that the platform answers and makes the topic when it does not exist.
    async fn ensure_topic(&self) -> Result<(), StreamError>;

    /// Where to read each partition, from positions taken now: the partitions `seek` allows,
    /// from the table's start (moved forward by `seek`) to the current end (snapshot) or
    /// without end (`follow`, unless `seek` bounds it).
    async fn plan_ranges(&self, seek: &Seek) -> Result<Vec<PartitionRange>, StreamError>;

    /// How many readers (DataFusion partitions) read `ranges` partitions on
    /// `target_partitions` cores.
    fn readers(&self, target_partitions: usize, ranges: usize) -> usize {
        target_partitions.clamp(1, ranges.max(1))
    }

    /// Opens a reader of `ranges` (called on the reader's own thread); `keys`: whether the
    /// query reads message keys (without, [`InMessage::key`] may stay `None`).
    fn open_source(
        &self,
        ranges: &[PartitionRange],
        keys: bool,
    ) -> Result<Box<dyn PartitionSource>, StreamError>;

    /// The writer of `INSERT INTO`.
    fn sink(&self) -> Result<Arc<dyn TopicSink>, StreamError>;
}
