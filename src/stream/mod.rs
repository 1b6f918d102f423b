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

pub use crate::error::StreamError;
