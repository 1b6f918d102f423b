//! `INSERT INTO topic SELECT …`: rows become messages ([`super::codec`]) written through a
//! [`TopicSink`]. The trait is small so that a coordinator can route the same messages to Iggy
//! or Kafka.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;

use super::StreamError;
use super::codec::{Encoder, OutMessage};

/// Batches encoded at once while the writer sends.
const ENCODERS: usize = 2;

/// Messages handed to a writer at once: shared, so that a coordinated write can keep them for
/// a re-send without copying them.
pub type Messages = Arc<Vec<OutMessage>>;

/// Resolves once the messages sent before it was made are kept ([`TopicWriter::checkpoint`]).
pub type Checkpoint = futures::future::BoxFuture<'static, Result<(), StreamError>>;

/// A topic that takes messages.
#[async_trait]
pub trait TopicSink: fmt::Debug + Send + Sync {
    /// What it writes to, for messages: `kafka 127.0.0.1:9092/calls`.
    fn target(&self) -> String;

    /// Starts one write (one `INSERT`): connects and, for transactional sinks, begins a
    /// transaction.
    async fn open(&self) -> Result<Box<dyn TopicWriter>, StreamError>;
}

/// One write in progress.
#[async_trait]
pub trait TopicWriter: Send {
    /// Queues messages; may wait for room (memory stays bounded) and fails as soon as a
    /// delivery has failed.
    async fn send(&mut self, messages: Messages) -> Result<(), StreamError>;

    /// Waits until every message sent so far is acknowledged and kept by the platform as it
    /// will be once the write finishes (Iggy: saved to disk with fsync; Kafka: acknowledged
    /// by the in-sync replicas), so that a failure after this loses none of them.
    async fn settle(&mut self) -> Result<(), StreamError>;

    /// What [`Self::settle`] waits for, as a future that does not borrow the writer: more
    /// messages may be sent while it runs (a coordinated write settles one window while it
    /// sends the next). `None`: this writer can only settle in place.
    fn checkpoint(&mut self) -> Option<Checkpoint> {
        None
    }

    /// Waits until every message is delivered (and commits the transaction); the number
    /// delivered.
    async fn finish(self: Box<Self>) -> Result<u64, StreamError>;

    /// Gives up: aborts the transaction (transactional sinks); what was delivered outside a
    /// transaction stays delivered.
    async fn abort(self: Box<Self>);
}

/// Messages of `INSERT`s into one topic table's target, since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// Handed to the platform's writer.
    pub sent: u64,
    /// Acknowledged when their statement finished.
    pub acknowledged: u64,
    /// Sent by statements that failed (not reported as written).
    pub failed: u64,
}

static SINK_COUNTS: LazyLock<Mutex<BTreeMap<String, SinkCounts>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

fn count_sink(target: &str, add: SinkCounts) {
    let mut all = SINK_COUNTS.lock().unwrap_or_else(|p| p.into_inner());
    let c = all.entry(target.to_string()).or_default();
    c.sent += add.sent;
    c.acknowledged += add.acknowledged;
    c.failed += add.failed;
}

/// Every topic table target written to (`iggy 127.0.0.1:8090/s/calls`) with its counts, for
/// the server's metrics. Coordinated tables count their platforms' messages themselves.
pub fn sink_counts() -> Vec<(String, SinkCounts)> {
    let all = SINK_COUNTS.lock().unwrap_or_else(|p| p.into_inner());
    all.iter().map(|(t, c)| (t.clone(), *c)).collect()
}

/// A DataFusion [`DataSink`] writing rows to a [`TopicSink`].
#[derive(Debug)]
pub struct TopicDataSink {
    sink: Arc<dyn TopicSink>,
    encoder: Encoder,
    schema: SchemaRef,
}

impl TopicDataSink {
    /// Rows of `schema` (the table's columns), encoded by `encoder`, written to `sink`.
    pub fn new(sink: Arc<dyn TopicSink>, encoder: Encoder, schema: SchemaRef) -> Self {
        TopicDataSink {
            sink,
            encoder,
            schema,
        }
    }
}

impl DisplayAs for TopicDataSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "TopicDataSink: {}", self.sink.target())
    }
}

#[async_trait]
impl DataSink for TopicDataSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let mut writer = self.sink.open().await?;
        // batches are encoded on blocking threads, ENCODERS at a time and in order, while the
        // writer sends the ones before them
        let target = self.sink.target();
        let encoder = self.encoder.clone();
        let encoding = target.clone();
        let mut encoded = data
            .map(move |batch| {
                let encoder = encoder.clone();
                let target = encoding.clone();
                async move {
                    let batch = batch?;
                    tokio::task::spawn_blocking(move || encoder.encode(&batch))
                        .await
                        .map_err(|e| DataFusionError::External(Box::new(e)))?
                        .map_err(|e| {
                            DataFusionError::Execution(format!("{target}: cannot encode rows: {e}"))
                        })
                }
            })
            .buffered(ENCODERS);
        let mut sent = 0u64;
        let failed = |sent: u64| {
            count_sink(
                &target,
                SinkCounts {
                    failed: sent,
                    ..SinkCounts::default()
                },
            );
        };
        while let Some(messages) = encoded.next().await {
            let messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    writer.abort().await;
                    failed(sent);
                    return Err(e);
                }
            };
            let n = messages.len() as u64;
            if let Err(e) = writer.send(Arc::new(messages)).await {
                writer.abort().await;
                failed(sent + n);
                return Err(e.into());
            }
            sent += n;
            count_sink(
                &target,
                SinkCounts {
                    sent: n,
                    ..SinkCounts::default()
                },
            );
        }
        match writer.finish().await {
            Ok(written) => {
                count_sink(
                    &target,
                    SinkCounts {
                        acknowledged: written,
                        ..SinkCounts::default()
                    },
                );
                Ok(written)
            }
            Err(e) => {
                failed(sent);
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

    use crate::stream::options::Format;

    /// A platform that takes every message, and acknowledges them at the end unless told
    /// to fail there.
    #[derive(Debug)]
    struct Fake {
        target: String,
        fail_at_finish: bool,
    }

    struct FakeWriter {
        target: String,
        sent: u64,
        fail_at_finish: bool,
    }

    #[async_trait]
    impl TopicSink for Fake {
        fn target(&self) -> String {
            self.target.clone()
        }
        async fn open(&self) -> Result<Box<dyn TopicWriter>, StreamError> {
            Ok(Box::new(FakeWriter {
                target: self.target.clone(),
                sent: 0,
                fail_at_finish: self.fail_at_finish,
            }))
        }
    }

    #[async_trait]
    impl TopicWriter for FakeWriter {
        async fn send(&mut self, messages: Messages) -> Result<(), StreamError> {
            self.sent += messages.len() as u64;
            Ok(())
        }
        async fn settle(&mut self) -> Result<(), StreamError> {
            Ok(())
        }
        async fn finish(self: Box<Self>) -> Result<u64, StreamError> {
            if self.fail_at_finish {
                Err(StreamError::transient(&self.target, "not acknowledged"))
            } else {
                Ok(self.sent)
            }
        }
        async fn abort(self: Box<Self>) {}
    }

    async fn write(target: &str, fail_at_finish: bool, rows: usize) -> Result<u64> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("chrom", DataType::Utf8, false),
            Field::new("pos", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec!["chr1"; rows])),
                Arc::new(Int64Array::from((0..rows as i64).collect::<Vec<_>>())),
            ],
        )?;
        let sink = TopicDataSink::new(
            Arc::new(Fake {
                target: target.to_string(),
                fail_at_finish,
            }),
            Encoder::new(Format::Json, Arc::clone(&schema)),
            Arc::clone(&schema),
        );
        let data = Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter([Ok(batch)]),
        ));
        sink.write_all(data, &Arc::new(TaskContext::default()))
            .await
    }

    fn counts(target: &str) -> SinkCounts {
        sink_counts()
            .into_iter()
            .find(|(t, _)| t == target)
            .map(|(_, c)| c)
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn messages_are_counted_sent_then_acknowledged_or_failed() {
        let ok = "fake sink-counts/ok";
        assert_eq!(write(ok, false, 5).await.unwrap(), 5);
        assert_eq!(write(ok, false, 2).await.unwrap(), 2);
        assert_eq!(
            counts(ok),
            SinkCounts {
                sent: 7,
                acknowledged: 7,
                failed: 0
            }
        );
        let bad = "fake sink-counts/bad";
        assert!(write(bad, true, 3).await.is_err());
        assert_eq!(
            counts(bad),
            SinkCounts {
                sent: 3,
                acknowledged: 0,
                failed: 3
            }
        );
    }
}
