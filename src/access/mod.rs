//! Who may touch what: file roots, roles and grants, checked on every statement of a guarded
//! session (the server's sessions; the CLI's have no guard).
//!
//! - [`paths`]: where a client's path really points, and whether that is under a root.
//! - [`rules`]: roles, grants and privileges (pure).
//! - [`guard`]: the [`Guard`] a session carries, checking statements before they are planned
//!   and plans before they run; paths as tables and table functions check it as they resolve.
//! - [`restrict`]: tables registered narrowed (columns, masks, row filters).
//!
//! A refusal is an [`AccessError`], which the Flight SQL server sends as `PERMISSION_DENIED`.

pub mod guard;
pub mod paths;
pub mod restrict;
pub mod rules;

pub use guard::Guard;
pub use rules::Privilege;

/// A statement may not do what it asks.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    /// The principal lacks a privilege on a table.
    #[error("permission denied: {privilege} on table '{table}'")]
    Table {
        /// The table.
        table: String,
        /// What was missing.
        privilege: Privilege,
    },
    /// A path is outside the roots, or not granted (whether it exists is not said).
    #[error("permission denied: {privilege} on path '{path}'")]
    Path {
        /// The path, as the client wrote it.
        path: String,
        /// What was missing.
        privilege: Privilege,
    },
    /// A stream location is not allowed.
    #[error("permission denied: {privilege} on stream location '{location}'")]
    Stream {
        /// The location, credentials removed.
        location: String,
        /// What was missing.
        privilege: Privilege,
    },
    /// A kind of statement or function the principal may not use.
    #[error("permission denied: {0}")]
    Statement(String),
}

impl From<AccessError> for datafusion::error::DataFusionError {
    fn from(e: AccessError) -> Self {
        datafusion::error::DataFusionError::External(Box::new(e))
    }
}
