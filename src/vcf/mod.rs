//! VCF and BCF files as SQL tables.
//!
//! `header` and `schema` turn a header into a typed Arrow schema; `input` opens a file of any
//! compression and container; `record` and `batch` decode record lines into batches; `table`
//! (the format and provider), `exec` (the scan) and `opener` (one file → stream) plug it into
//! DataFusion; `catalog` and `functions` make it reachable from SQL.

pub mod batch;
pub mod bcf;
pub mod bcf_decode;
pub mod catalog;
pub mod exec;
pub mod functions;
pub mod header;
pub mod input;
pub mod key;
pub mod late;
pub mod opener;
pub mod options;
pub mod parquet;
pub mod partition;
pub mod prune;
pub mod record;
pub mod region;
pub mod schema;
pub mod table;
pub mod unordered;
pub mod values;
pub mod warnings;
pub mod writer;

pub use header::VcfHeader;
pub use region::Region;
pub use schema::Layout;
pub use table::{VcfOptions, VcfTable};
