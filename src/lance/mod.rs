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

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::error::DataFusionError;
use lance::Dataset;
use lance::dataset::builder::DatasetBuilder;
use lance::session::Session;

use crate::stamp::FileStamp;

pub use table::{LanceTable, LanceTableFactory, LanceUrlTableFactory, ShippedLanceScan};

/// Opens the latest version of the dataset at `uri` with the process's one Lance session, so
/// that opened indexes and metadata are cached across queries, tables and server sessions.
/// Every scan asks for the latest version; a dataset this process opened before is reused
/// while it still is the latest (its version is the latest one and, for a local dataset, its
/// manifest file is the one read then — a dataset deleted and written again at the same path
/// starts its versions again), so an unchanged dataset is not read and decoded again.
pub(crate) async fn open_dataset(uri: &str) -> lance::Result<Dataset> {
    // the datasets this process opened, by URI
    static OPENED: Kept<String, Dataset> = Kept::new();
    if let Some((dataset, stamp)) = OPENED.get(uri)
        // an error (the dataset is gone, say) is for the fresh open below to report
        && dataset
            .latest_version_id()
            .await
            .is_ok_and(|latest| latest == dataset.version().version)
        && manifest_stamp(&dataset) == Some(stamp)
    {
        return Ok(dataset);
    }
    let dataset = DatasetBuilder::from_uri(uri)
        .with_session(session())
        .load()
        .await?;
    if let Some(stamp) = manifest_stamp(&dataset) {
        OPENED.put(uri.to_string(), dataset.clone(), stamp);
    }
    Ok(dataset)
}

/// A process-wide map of what was read from local files, each value with the stamp of the
/// file it came from (what the caller compares before reusing it); at most [`MAX_KEPT`]
/// entries, then it starts again.
pub(crate) struct Kept<K, V>(OnceLock<Mutex<HashMap<K, (V, FileStamp)>>>);

/// Entries a [`Kept`] map holds at most.
const MAX_KEPT: usize = 64;

impl<K: Eq + Hash, V: Clone> Kept<K, V> {
    /// An empty map.
    pub(crate) const fn new() -> Self {
        Kept(OnceLock::new())
    }

    fn map(&self) -> &Mutex<HashMap<K, (V, FileStamp)>> {
        self.0.get_or_init(Default::default)
    }

    /// The value kept for `key`, with the stamp of the file it came from.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<(V, FileStamp)>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map().lock().ok()?.get(key).cloned()
    }

    /// Keeps `value`, read from a file stamped `stamp`.
    pub(crate) fn put(&self, key: K, value: V, stamp: FileStamp) {
        if let Ok(mut map) = self.map().lock() {
            if map.len() >= MAX_KEPT {
                map.clear();
            }
            map.insert(key, (value, stamp));
        }
    }
}

/// Size and modification time of the manifest file of a local dataset's version (`None` for
/// a dataset in an object store, or when the file cannot be read: never reused then).
pub(crate) fn manifest_stamp(dataset: &Dataset) -> Option<FileStamp> {
    if dataset.uri().contains("://") && !dataset.uri().starts_with("file://") {
        return None;
    }
    let path = format!("/{}", dataset.manifest_location().path.as_ref());
    FileStamp::of(std::path::Path::new(&path)).ok()
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
