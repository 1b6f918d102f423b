//! The one integration-test binary: SQL behaviour (sqllogictest files), the CLI, and the saved
//! queries of `queries/`.

#[path = "integration/fixtures.rs"]
mod fixtures;
#[path = "integration/slt.rs"]
mod slt;
#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/queries.rs"]
mod queries;
