//! The one integration-test binary: SQL behaviour (sqllogictest files), the CLI, and the saved
//! queries of `queries/`.

#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/fixtures.rs"]
mod fixtures;
#[path = "integration/parquet_out.rs"]
mod parquet_out;
#[path = "integration/queries.rs"]
mod queries;
#[path = "integration/shell.rs"]
mod shell;
#[path = "integration/slt.rs"]
mod slt;
