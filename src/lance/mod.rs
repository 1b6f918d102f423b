//! Lance datasets as tables: scans with projection, filter and limit pushdown
//! ([`table::LanceTable`]), `INSERT INTO` and `COPY … TO 'dir' STORED AS LANCE`
//! ([`sink::LanceSink`], [`copy`]), vector index DDL ([`index`]), and
//! k-nearest-neighbour search through an index: the `vector_search(…)` table function
//! ([`search`]) and the rewrite of `ORDER BY <distance>(col, <vector>) LIMIT k` ([`rewrite`]),
//! both running [`knn::KnnExec`].

pub mod copy;
pub mod index;
pub mod knn;
pub mod rewrite;
pub mod search;
pub mod sink;
pub mod table;

use std::sync::{Arc, OnceLock};

use datafusion::error::DataFusionError;
use lance::Dataset;
use lance::dataset::builder::DatasetBuilder;
use lance::session::Session;

pub use table::{LanceTable, LanceTableFactory, LanceUrlTableFactory, ShippedLanceScan};

/// Opens the latest version of the dataset at `uri` with the process's one Lance session, so
/// that opened indexes and metadata are cached across queries, tables and server sessions
/// (a dataset is opened again for every scan, to see its latest version).
pub(crate) async fn open_dataset(uri: &str) -> lance::Result<Dataset> {
    DatasetBuilder::from_uri(uri)
        .with_session(session())
        .load()
        .await
}

fn session() -> Arc<Session> {
    static SESSION: OnceLock<Arc<Session>> = OnceLock::new();
    Arc::clone(SESSION.get_or_init(|| Arc::new(Session::default())))
}

/// The dataset a plan node reads: opened where the plan was made, or a version to open where
/// the node runs (a node sent to a cluster's executor reads the version its client planned).
#[derive(Debug, Clone)]
pub enum DatasetVersion {
    /// Opened already.
    Opened(Arc<Dataset>),
    /// To open: the dataset at `uri`, this version.
    At {
        /// Where the dataset is ([`dataset_uri`]).
        uri: String,
        /// Its version.
        version: u64,
    },
}

impl DatasetVersion {
    /// The version read.
    pub fn version(&self) -> u64 {
        match self {
            DatasetVersion::Opened(dataset) => dataset.version().version,
            DatasetVersion::At { version, .. } => *version,
        }
    }

    /// The dataset at that version (errors name `location`).
    pub async fn dataset(&self, location: &str) -> Result<Arc<Dataset>, DataFusionError> {
        match self {
            DatasetVersion::Opened(dataset) => Ok(Arc::clone(dataset)),
            DatasetVersion::At { uri, version } => DatasetBuilder::from_uri(uri)
                .with_session(session())
                .with_version(*version)
                .load()
                .await
                .map(Arc::new)
                .map_err(|e| lance_error(location, e)),
        }
    }
}

/// A Lance error as a DataFusion error naming the dataset (one line: Lance's messages end
/// with the source location of the error, which is dropped).
pub(crate) fn lance_error(location: &str, error: lance::Error) -> DataFusionError {
    let message = error.to_string();
    let message = message
        .rsplit_once(", /")
        .or_else(|| message.rsplit_once(", $"))
        .map_or(message.as_str(), |(m, _)| m);
    DataFusionError::Execution(format!("lance dataset '{location}': {message}"))
}

/// A location as Lance takes it: a local path made absolute (Lance resolves relative paths
/// against its own idea of the working directory), other URIs as they are.
pub(crate) fn dataset_uri(location: &str) -> String {
    let location = location.strip_prefix("file://").unwrap_or(location);
    if location.contains("://") {
        return location.to_string();
    }
    let path = std::path::Path::new(location);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    absolute.to_string_lossy().trim_end_matches('/').to_string()
}
