//! Streaming topics as SQL tables: `CREATE EXTERNAL TABLE t STORED AS IGGY LOCATION
//! 'iggy://user:pass@host:port/stream/topic'` or `STORED AS KAFKA LOCATION 'host:port/topic'`.
//! `SELECT` reads a bounded snapshot (or follows the topic), `INSERT INTO` writes through a
//! [`sink::TopicSink`].
//!
//! Platform-neutral parts (session → stream → platform, never back):
//! - [`options`]: the `OPTIONS (…)` of a topic table.
//! - [`codec`]: rows ↔ messages (JSON, Arrow IPC), message ids, metadata columns;
//!   [`json`]: JSON messages decoded in one pass into a schema's columns; [`json_rows`]: rows
//!   written as JSON messages.
//! - [`seek`]: `_partition`/`_offset`/`_timestamp` filters → read positions.
//! - [`table`]: the table; [`scan`]: its parallel, ordered scan; [`sink`]: `INSERT INTO`.
//! - [`platform`]: what a platform provides ([`platform::Platform`],
//!   [`platform::PartitionSource`], [`sink::TopicSink`]).
//! - [`factory`]: `STORED AS KAFKA | IGGY`.
//!
//! Platforms: [`kafka`] (rdkafka) and [`iggy`] (the Iggy SDK).

pub mod codec;
pub mod factory;
pub mod iggy;
pub mod json;
pub mod json_rows;
pub mod kafka;
pub mod options;
pub mod platform;
pub mod scan;
pub mod seek;
pub mod sink;
pub mod table;

pub use crate::error::StreamError;
