//! Typed errors: [`VcfError`] (variant files) names the file and line, [`StreamError`]
//! (streaming platforms) the topic and whether a retry can help; and [`one_line`], the text
//! every edge (CLI, shell, server) prints for an error.

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
    /// Rows that cannot be written as VCF/BCF (a NULL position, rows with other samples,
    /// records out of order for an index).
    #[error("{}: {message}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// What is wrong, naming the row.
        message: String,
    },
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

/// A [`VcfError`] crosses into DataFusion whole, as [`DataFusionError::External`], so the edge
/// (the CLI, the Flight status codes) still knows its kind.
impl From<VcfError> for DataFusionError {
    fn from(e: VcfError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

/// An error talking to a streaming platform. `retryable` says whether trying again can help
/// (a broker that is down, a timeout) or not (a bad option, a message that does not decode);
/// circuit breakers count only the former.
#[derive(Debug, thiserror::Error)]
#[error("{target}: {message}")]
pub struct StreamError {
    /// What it is about: `kafka 127.0.0.1:9092/calls`, with partition/offset when known.
    pub target: String,
    /// What went wrong, on one line.
    pub message: String,
    /// Whether a retry may succeed.
    pub retryable: bool,
}

impl StreamError {
    /// An error that a retry may cure.
    pub fn transient(target: impl Into<String>, message: impl ToString) -> Self {
        StreamError {
            target: target.into(),
            message: single_line(message.to_string()),
            retryable: true,
        }
    }

    /// An error that a retry cannot cure.
    pub fn permanent(target: impl Into<String>, message: impl ToString) -> Self {
        StreamError {
            target: target.into(),
            message: single_line(message.to_string()),
            retryable: false,
        }
    }
}

fn single_line(s: String) -> String {
    s.replace(['\n', '\r'], " ")
}

/// A [`StreamError`] crosses into DataFusion whole, as `External`, so the edge (the Flight
/// status code, a coordinator) still sees whether it is retryable.
impl From<StreamError> for DataFusionError {
    fn from(e: StreamError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

/// The first vcfq error (a [`VcfError`] or a [`StreamError`]) in a chain of errors.
pub fn typed_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<TypedCause<'a>> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = next {
        if let Some(v) = cause.downcast_ref::<VcfError>() {
            return Some(TypedCause::Vcf(v));
        }
        if let Some(s) = cause.downcast_ref::<StreamError>() {
            return Some(TypedCause::Stream(s));
        }
        if let Some(df) = cause.downcast_ref::<DataFusionError>() {
            // DataFusion wraps errors in ways `source()` does not always reveal
            if let DataFusionError::ArrowError(arrow, _) = df
                && let datafusion::arrow::error::ArrowError::ExternalError(inner) = arrow.as_ref()
            {
                next = Some(inner.as_ref());
                continue;
            }
            if let DataFusionError::Shared(inner) = df {
                next = Some(inner.as_ref());
                continue;
            }
        }
        next = cause.source();
    }
    None
}

/// A vcfq error found in a chain.
#[derive(Debug, Clone, Copy)]
pub enum TypedCause<'a> {
    /// About a variant file.
    Vcf(&'a VcfError),
    /// About a streaming platform.
    Stream(&'a StreamError),
}

impl TypedCause<'_> {
    /// The message, with the word for its kind that DataFusion's own errors carry: "Error
    /// during planning" for the user's SQL (arguments, paths), "Execution error" otherwise.
    pub fn message(&self) -> String {
        match self {
            TypedCause::Vcf(v) if v.is_plan_error() => format!("Error during planning: {v}"),
            TypedCause::Vcf(v) => format!("Execution error: {v}"),
            TypedCause::Stream(s) if s.retryable => format!("External error: {s}"),
            TypedCause::Stream(s) => format!("Execution error: {s}"),
        }
    }
}

/// An error and its causes on one line, leaving out causes already quoted by the error above
/// them (DataFusion errors often repeat their source in their own message). An error caused
/// by a vcfq error is that error's message, however DataFusion wrapped it.
pub fn one_line(e: &anyhow::Error) -> String {
    for cause in e.chain() {
        if let Some(remote) = remote_message(&cause.to_string()) {
            return remote;
        }
    }
    let root: &(dyn std::error::Error + 'static) = e.as_ref();
    if let Some(cause) = typed_cause(root) {
        return cause.message().replace(['\n', '\r'], " ");
    }
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

/// Marks around an error's one line, as a process of a cluster reports it.
const REMOTE_START: &str = "<vcfq-error>";
const REMOTE_END: &str = "</vcfq-error>";

/// The error as its one line ([`one_line`]) between marks, for an error that leaves a
/// cluster's scheduler or executor: Ballista reports errors to the client in their Rust
/// debug form, wrapped in its own words, and the client finds the line again in that text
/// ([`remote_message`]) to print what a local run prints.
pub fn mark_for_client(e: DataFusionError) -> DataFusionError {
    let text = one_line(&anyhow::Error::new(e));
    DataFusionError::Execution(format!("{REMOTE_START}{text}{REMOTE_END}"))
}

/// The one line of an error marked by [`mark_for_client`] in `text` (a report that quotes
/// it in Rust's debug form: its escapes are undone).
pub fn remote_message(text: &str) -> Option<String> {
    let start = text.rfind(REMOTE_START)? + REMOTE_START.len();
    let end = start + text[start..].find(REMOTE_END)?;
    Some(unescape_debug(&text[start..end]))
}

/// Undoes the escapes of `str`'s `Debug` form (`\\`, `\"`, `\'`, `\n`, `\r`, `\t`, `\0`,
/// `\u{…}`); anything else is kept as it is.
fn unescape_debug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('u') if chars.peek() == Some(&'{') => {
                chars.next();
                let hex: String = chars.by_ref().take_while(|&h| h != '}').collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => {
                        out.push_str("\\u{");
                        out.push_str(&hex);
                        out.push('}');
                    }
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_error_reads_back_from_ballistas_debug_report() {
        let e = VcfError::Data {
            path: PathBuf::from("/d/a \"b\"\\c.vcf"),
            line: 30041,
            message: "invalid POS 'x'\tß\u{7}".into(),
        };
        let local = one_line(&anyhow::Error::new(DataFusionError::from(e)));
        let marked = mark_for_client(DataFusionError::External(Box::new(VcfError::Data {
            path: PathBuf::from("/d/a \"b\"\\c.vcf"),
            line: 30041,
            message: "invalid POS 'x'\tß\u{7}".into(),
        })));
        // what the executor's task failure and the client's job failure make of it
        let task = format!("Task failed due to runtime execution error: {:?}", marked);
        let job = DataFusionError::Execution(format!("Job abc failed: {task}"));
        assert_eq!(remote_message(&task).as_deref(), Some(local.as_str()));
        assert_eq!(one_line(&anyhow::Error::new(job)), local);
        assert!(local.starts_with("Execution error: /d/a \"b\"\\c.vcf:30041: invalid POS"));
    }

    #[test]
    fn text_without_marks_is_no_remote_error() {
        assert_eq!(remote_message("Job x failed: boom"), None);
        assert_eq!(remote_message("<vcfq-error>unterminated"), None);
        assert_eq!(unescape_debug(r"a\u{zz}b\"), "a\\u{zz}b\\");
    }
}
