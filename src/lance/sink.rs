//! Writing rows into a Lance dataset, as they stream: `INSERT INTO` a Lance table (a new
//! version appended or replacing the rows) and `COPY … TO 'dir' STORED AS LANCE`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::StreamExt;
use lance::dataset::{InsertBuilder, WriteMode, WriteParams};

use super::lance_error;

/// What a write does to the dataset at its location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// Adds the rows as a new version (the dataset must exist, with the same columns).
    Append,
    /// A new version holding only these rows (the dataset is created when missing; older
    /// versions stay readable through Lance's time travel).
    Overwrite,
}

/// Streams record batches into a Lance dataset; the rows become visible at once, in one
/// commit, when the input ends, and not at all when it fails.
#[derive(Debug)]
pub struct LanceSink {
    location: String,
    kind: WriteKind,
    schema: SchemaRef,
}

impl LanceSink {
    /// A sink writing to the dataset at `location` (a path made absolute, or a URI).
    pub fn new(location: String, kind: WriteKind, schema: SchemaRef) -> Self {
        LanceSink {
            location,
            kind,
            schema,
        }
    }

    /// Creates an empty dataset with `schema` at `uri`.
    pub async fn create_empty(uri: &str, schema: SchemaRef) -> lance::Result<()> {
        let params = WriteParams {
            mode: WriteMode::Create,
            ..Default::default()
        };
        InsertBuilder::new(uri)
            .with_params(&params)
            .execute(vec![RecordBatch::new_empty(schema)])
            .await?;
        Ok(())
    }
}

/// The plan writing `input` into the dataset at `location`.
pub fn write_plan(
    input: Arc<dyn ExecutionPlan>,
    location: String,
    kind: WriteKind,
    schema: SchemaRef,
) -> Arc<dyn ExecutionPlan> {
    let sink = LanceSink::new(location, kind, schema);
    Arc::new(DataSinkExec::new(input, Arc::new(sink), None))
}

impl DisplayAs for LanceSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let kind = match self.kind {
            WriteKind::Append => "append",
            WriteKind::Overwrite => "overwrite",
        };
        write!(f, "LanceSink: location={}, mode={kind}", self.location)
    }
}

#[async_trait]
impl DataSink for LanceSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let rows = Arc::new(AtomicU64::new(0));
        // the input's own error (a malformed VCF line, say) goes back as it is, not as a
        // Lance write error
        let failure: Arc<Mutex<Option<DataFusionError>>> = Arc::default();
        let counted = {
            let rows = Arc::clone(&rows);
            let failure = Arc::clone(&failure);
            let schema = data.schema();
            let stream = data.map(move |batch| match batch {
                Ok(b) => {
                    rows.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
                    Ok(b)
                }
                Err(e) => {
                    let message = e.to_string();
                    *failure.lock().expect("not poisoned") = Some(e);
                    Err(DataFusionError::Execution(message))
                }
            });
            Box::pin(RecordBatchStreamAdapter::new(schema, stream)) as SendableRecordBatchStream
        };
        let mode = match self.kind {
            WriteKind::Append => WriteMode::Append,
            WriteKind::Overwrite => WriteMode::Overwrite,
        };
        let params = WriteParams {
            mode,
            ..Default::default()
        };
        InsertBuilder::new(self.location.as_str())
            .with_params(&params)
            .execute_stream(counted)
            .await
            .map_err(|e| match failure.lock().expect("not poisoned").take() {
                Some(input) => input,
                None => lance_error(&self.location, e),
            })?;
        Ok(rows.load(Ordering::Relaxed))
    }
}
