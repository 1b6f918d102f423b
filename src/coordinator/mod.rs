//! Coordinated stream tables: one table over two platforms (Iggy and Kafka, either one
//! primary), written through a circuit breaker per platform with failover inside a statement,
//! read from both with re-sent messages dropped.
//!
//! ```sql
//! CREATE EXTERNAL TABLE calls STORED AS STREAM LOCATION 'calls' OPTIONS (
//!   'primary' 'iggy://user:pass@host:8090/genomics/calls',
//!   'fallback' 'kafka://host:9092/calls', 'like' 'cohort.vcf.gz');
//! ```
//!
//! - [`breaker`]: the breaker state machine (pure, injected clock).
//! - [`router`]: which platform a window goes to (pure).
//! - [`dedup`]: which rows of a read are re-sends (pure, bounded).
//! - [`health`]: breakers and counters per platform, listed by `vcfq.stream_health`.
//! - [`writer`]: `INSERT INTO` with its replay window; [`scan`]: the merged, de-duplicated read.
//! - [`table`]: the table and its options; `STORED AS STREAM` makes it.

pub mod breaker;
pub mod dedup;
pub mod health;
pub mod router;
pub mod scan;
pub mod table;
pub mod writer;

pub use table::{CoordinatedTable, CoordinatedTableFactory, StreamHealthTable};
