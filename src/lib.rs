//! vcfq: a SQL engine for genomic variants, built on Apache DataFusion.
//!
//! VCF and BCF files (plain, gzip, BGZF) are SQL tables with a schema typed from their header:
//!
//! ```sql
//! SELECT chrom, count(*) FROM 'calls.vcf.gz' WHERE info.AF[1] > 0.1 GROUP BY chrom;
//! SELECT sample, count(*) FROM vcf_genotypes('calls.vcf.gz') WHERE gt_dosage(GT) > 0 GROUP BY sample;
//! ```
//!
//! [`SessionBuilder`] makes a DataFusion session with all of it; the `vcfq` binary (shell,
//! scripts) and the Flight SQL server ([`flight`]) are thin front ends over it.

pub mod access;
pub mod cluster;
pub mod config;
pub mod coordinator;
pub mod copy_target;
pub mod error;
pub mod flight;
pub mod generator;
pub mod lance;
pub mod output;
pub mod readers;
pub mod run;
pub mod script;
pub mod session;
pub mod shell;
pub mod stamp;
pub mod stream;
pub mod telemetry;
pub mod vcf;

pub use error::VcfError;
pub use session::SessionBuilder;
