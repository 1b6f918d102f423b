//! One file → a stream of record batches, decoded on a thread of its own.
//!
//! The reader thread sends batches through a channel of two slots, so at most a few batches
//! are in memory per partition; when the consumer goes away (LIMIT satisfied, query cancelled)
//! the next send fails and the thread stops reading.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use tokio::sync::mpsc;

use super::batch::{BatchBuilder, DecodePlan};
use super::input::VcfInput;
use super::record::{record_end, split_record};
use super::region::Region;
use super::values::Warnings;
use crate::error::VcfError;

/// Everything needed to read one file of a scan.
#[derive(Debug, Clone)]
pub struct VcfOpener {
    /// What to decode.
    pub plan: Arc<DecodePlan>,
    /// Only records overlapping this region.
    pub region: Option<Region>,
    /// Stop after this many rows.
    pub limit: Option<usize>,
    /// Skip (and count) unreadable lines instead of failing.
    pub skip_errors: bool,
    /// Target rows per batch.
    pub batch_size: usize,
    /// Threads decoding BGZF blocks.
    pub bgzf_threads: usize,
}

type Sender = mpsc::Sender<Result<RecordBatch>>;

impl VcfOpener {
    /// Starts reading `path`; the stream ends at the end of the file or the limit.
    pub fn open(&self, path: PathBuf) -> SendableRecordBatchStream {
        let (tx, rx) = mpsc::channel(2);
        let opener = self.clone();
        std::thread::spawn(move || {
            if let Err(e) = opener.run(&path, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.plan.schema), stream))
    }

    fn run(&self, path: &std::path::Path, tx: &Sender) -> Result<()> {
        let mut input = VcfInput::open(path, self.bgzf_threads)?;
        if input.header().samples != self.plan.sample_names {
            return Err(VcfError::Header {
                path: path.to_path_buf(),
                message: "samples differ from those of the table's first file".to_string(),
            }
            .into());
        }
        let mut builder = BatchBuilder::new(Arc::clone(&self.plan));
        let per_batch = self.plan.records_per_batch(self.batch_size);
        let mut warnings = Warnings::default();
        let mut skipped = 0usize;
        let mut first_skipped: Option<String> = None;
        let mut produced = 0usize;
        let mut line = Vec::new();
        let send = |batch: RecordBatch| tx.blocking_send(Ok(batch)).is_ok();
        while input.next_line(&mut line)? {
            let line_no = input.line_number();
            warnings.line = line_no;
            let outcome = split_record(&line).and_then(|rec| {
                if let Some(region) = &self.region
                    && !region.overlaps(rec.chrom, rec.pos, record_end(&rec))
                {
                    return Ok(());
                }
                builder.append(&rec, &mut warnings)
            });
            if let Err(message) = outcome {
                if !self.skip_errors {
                    return Err(VcfError::Data { path: path.to_path_buf(), line: line_no, message }.into());
                }
                skipped += 1;
                first_skipped.get_or_insert_with(|| format!("line {line_no}: {message}"));
                continue;
            }
            let limit_reached = self.limit.is_some_and(|l| produced + builder.rows() >= l);
            if builder.records() >= per_batch || limit_reached {
                produced += builder.rows();
                if !send(builder.finish()?) || limit_reached {
                    return Ok(());
                }
            }
        }
        if builder.records() > 0 {
            send(builder.finish()?);
        }
        for w in warnings.summary() {
            log::warn!("{}: {w}", path.display());
        }
        if skipped > 0 {
            log::warn!(
                "{}: skipped {skipped} unreadable line(s) (vcf.on_error = 'skip'); first: {}",
                path.display(),
                first_skipped.unwrap_or_default()
            );
        }
        Ok(())
    }
}
