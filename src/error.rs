//! Typed errors of the VCF subsystem; each names the file (and line) it is about.

use std::io;
use std::path::{Path, PathBuf};

use datafusion::error::DataFusionError;

/// An error while opening or reading a variant file.
#[derive(Debug, thiserror::Error)]
pub enum VcfError {
    /// The file could not be opened.
    #[error("{}: cannot open: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Reading or decompressing failed outside any record.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The header is not a VCF/BCF header.
    #[error("{}: {message}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A record cannot be read.
    #[error("{}:{line}: {message}", path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the (decompressed) file.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A path or glob matched no file.
    #[error("{0}: no such file")]
    NotFound(String),
    /// A bad argument (region, sample name, option).
    #[error("{0}")]
    Invalid(String),
}

impl VcfError {
    /// An I/O error about `path`.
    pub fn io(path: &Path, source: io::Error) -> Self {
        VcfError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the user's SQL (arguments, options, paths) is at fault rather than the data.
    pub fn is_plan_error(&self) -> bool {
        matches!(self, VcfError::NotFound(_) | VcfError::Invalid(_))
    }
}

impl From<VcfError> for DataFusionError {
    fn from(e: VcfError) -> Self {
        if e.is_plan_error() {
            DataFusionError::Plan(e.to_string())
        } else {
            DataFusionError::Execution(e.to_string())
        }
    }
}

/// An error and its causes on one line, leaving out causes already quoted by the error above
/// them (DataFusion errors often repeat their source in their own message).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let gist = text
            .split_once(": ")
            .map_or(text.as_str(), |(_, rest)| rest);
        if !out.contains(text.trim()) && !out.contains(gist.trim()) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(text.trim());
        }
    }
    out.replace(['\n', '\r'], " ")
}
