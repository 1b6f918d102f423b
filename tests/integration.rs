//! The one integration-test binary: SQL behaviour (sqllogictest files), the CLI, the saved
//! queries of `queries/`, the shell, the Flight SQL server with real clients (and with file roots, grants and an audit trail; metrics, traces, JWTs and mutual TLS), Kafka topics on a real broker, Iggy topics on a real server, coordinated tables over both, the same SQL on a Ballista cluster, and VCF/BCF written by vcfq as bcftools reads it.

#[path = "integration/access.rs"]
mod access;
#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/cluster.rs"]
mod cluster;
#[path = "integration/coordinator.rs"]
mod coordinator;
#[path = "integration/corpus.rs"]
mod corpus;
#[path = "integration/fixtures.rs"]
mod fixtures;
#[path = "integration/flight.rs"]
mod flight;
#[path = "integration/hardening.rs"]
mod hardening;
#[path = "integration/iggy.rs"]
mod iggy;
#[path = "integration/kafka.rs"]
mod kafka;
#[path = "integration/lance.rs"]
mod lance;
#[path = "integration/observability.rs"]
mod observability;
#[path = "integration/parquet_out.rs"]
mod parquet_out;
#[path = "integration/queries.rs"]
mod queries;
#[path = "integration/shell.rs"]
mod shell;
#[path = "integration/slt.rs"]
mod slt;
#[path = "integration/topics.rs"]
mod topics;
#[path = "integration/vcf_out.rs"]
mod vcf_out;
#[path = "integration/vectors.rs"]
mod vectors;
