//! Streaming topics as SQL tables: `CREATE EXTERNAL TABLE t STORED AS KAFKA LOCATION
//! 'host:port/topic'`. `SELECT` reads a bounded snapshot (or follows the topic), `INSERT INTO`
//! writes through a [`crate::sink::TopicSink`].
//!
//! - [`options`]: the `OPTIONS (…)` of a topic table.
//! - [`codec`]: rows ↔ messages (JSON, Arrow IPC), metadata columns.
//! - [`kafka`]: the Kafka table, its scan and its sink.

pub mod codec;
pub mod kafka;
pub mod options;

/// An error talking to a streaming platform. `retryable` says whether trying again can help
/// (a broker that is down, a timeout) or not (a bad option, a message that does not decode);
/// circuit breakers count only the former.
#[derive(Debug, thiserror::Error)]
#[error("{target}: {message}")]
pub struct StreamError {
    /// What it is about: `kafka 127.0.0.1:9092/calls`, with partition/offset when known.
    pub target: String,
    /// What went wrong, on one line.
    pub message: String,
    /// Whether a retry may succeed.
    pub retryable: bool,
}

impl StreamError {
    /// An error that a retry may cure.
    pub fn transient(target: impl Into<String>, message: impl ToString) -> Self {
        StreamError {
            target: target.into(),
            message: one_line(message.to_string()),
            retryable: true,
        }
    }

    /// An error that a retry cannot cure.
    pub fn permanent(target: impl Into<String>, message: impl ToString) -> Self {
        StreamError {
            target: target.into(),
            message: one_line(message.to_string()),
            retryable: false,
        }
    }
}

fn one_line(s: String) -> String {
    s.replace(['\n', '\r'], " ")
}

/// A [`StreamError`] crosses into DataFusion whole, as `External`, so the edge (the Flight
/// status code, a coordinator) still sees whether it is retryable.
impl From<StreamError> for datafusion::error::DataFusionError {
    fn from(e: StreamError) -> Self {
        datafusion::error::DataFusionError::External(Box::new(e))
    }
}
