//! One partition (files, byte ranges or index chunks) → a stream of record batches, decoded
//! on a thread of its own.
//!
//! Reader threads send batches through channels of a few slots, so at most a few batches
//! are in memory per reader; when the consumer goes away (LIMIT satisfied, query cancelled)
//! the next send fails and the thread stops reading.
//!
//! A byte range owns the lines that start after its first byte and at or before its last
//! (the first range of a file also owns the line at its start), so adjacent ranges split a
//! file without losing or repeating a line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::metrics::Count;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use tokio::sync::mpsc;

use super::batch::{BatchBuilder, DecodePlan};
use super::input::{Compression, VcfInput, line_at, next_bgzf_block};
use super::record::{RecordFields, record_end, split_record};
use super::region::Region;
use super::values::Warnings;
use crate::error::VcfError;

/// Which part of a file a partition reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extent {
    /// All records, from the header on.
    Whole,
    /// The records starting in this byte range of the (compressed) file.
    Bytes {
        /// First byte (a BGZF block is found at or after it).
        start: u64,
        /// End of the range (exclusive, likewise moved to a block start).
        end: u64,
    },
    /// BGZF virtual-position ranges `[start, end)` from an index.
    Chunks(Vec<(u64, u64)>),
}

/// One unit of work: a file, or a part of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRange {
    /// The file.
    pub path: PathBuf,
    /// The part of it.
    pub extent: Extent,
}

/// Everything needed to read the units of one partition.
#[derive(Debug, Clone)]
pub struct VcfOpener {
    /// What to decode.
    pub plan: Arc<DecodePlan>,
    /// Only records overlapping one of these regions (all records when empty).
    pub regions: Arc<Vec<Region>>,
    /// Stop after this many rows.
    pub limit: Option<usize>,
    /// Skip (and count) unreadable lines instead of failing.
    pub skip_errors: bool,
    /// Target rows per batch.
    pub batch_size: usize,
    /// Threads decoding BGZF blocks of a whole-file scan.
    pub bgzf_threads: usize,
    /// Progress counters, when the plan collects metrics.
    pub progress: Option<ScanProgress>,
}

/// How far a scan has got: (compressed) bytes of its units read, and record lines read. The
/// shell polls these to show progress on long scans.
#[derive(Debug, Clone)]
pub struct ScanProgress {
    /// Bytes of the units read so far (compressed bytes for BGZF).
    pub bytes: Count,
    /// Record lines read so far.
    pub records: Count,
}

/// Bytes of a unit, as [`ScanProgress::bytes`] counts them.
pub fn unit_bytes(unit: &FileRange) -> u64 {
    match &unit.extent {
        Extent::Whole => std::fs::metadata(&unit.path).map(|m| m.len()).unwrap_or(0),
        Extent::Bytes { start, end } => end.saturating_sub(*start),
        Extent::Chunks(chunks) => chunks
            .iter()
            .map(|(s, e)| (e >> 16).saturating_sub(s >> 16))
            .sum(),
    }
}

/// Reports the reading of one unit, a few thousand lines at a time.
struct UnitProgress<'a> {
    progress: Option<&'a ScanProgress>,
    size: u64,
    start: u64,
    reported: u64,
    lines: usize,
}

impl UnitProgress<'_> {
    const EVERY: usize = 4096;

    fn line(&mut self, input: &mut VcfInput) {
        self.lines += 1;
        if self.lines % Self::EVERY != 0 {
            return;
        }
        let Some(p) = self.progress else { return };
        p.records.add(Self::EVERY);
        let at = match (input.position(), input.kind().compression) {
            (Some(pos), Compression::Bgzf) => pos >> 16,
            (Some(pos), _) => pos,
            (None, _) => return,
        };
        let done = at.saturating_sub(self.start).min(self.size);
        if done > self.reported {
            p.bytes.add((done - self.reported) as usize);
            self.reported = done;
        }
    }

    fn finish(self) {
        if let Some(p) = self.progress {
            p.records.add(self.lines % Self::EVERY);
            p.bytes
                .add(self.size.saturating_sub(self.reported) as usize);
        }
    }
}

/// Batches a reader may have decoded ahead of the consumer: enough to finish a typical unit
/// while the consumer drains the units before it.
const CHANNEL_BATCHES: usize = 4;

/// What a reader thread sends: a batch, `None` at the end of each unit, or an error.
type Sender = mpsc::Sender<Result<Option<RecordBatch>>>;

/// State of one reader's work, across its units.
struct Progress {
    builder: BatchBuilder,
    per_batch: usize,
    produced: usize,
    warnings: Warnings,
    skipped: usize,
    first_skipped: Option<String>,
}

/// Whether to go on reading.
enum Flow {
    Continue,
    Stop,
}

/// The consumer's side of ordered reading: which unit comes next, from which reader.
struct Ordered {
    readers: Vec<mpsc::Receiver<Result<Option<RecordBatch>>>>,
    unit: usize,
    units: usize,
}

impl VcfOpener {
    /// Reads `units` with `readers` threads, unit `i` on reader `i % readers`, and yields the
    /// batches in unit order: records come out in file order, decoded in parallel, with at
    /// most a few batches waiting per reader. The stream ends after the last unit or the limit.
    pub fn open(&self, units: Vec<FileRange>, readers: usize) -> SendableRecordBatchStream {
        let n = readers.clamp(1, units.len().max(1));
        let mut receivers = Vec::with_capacity(n);
        for k in 0..n {
            let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
            let mine: Vec<FileRange> = units.iter().skip(k).step_by(n).cloned().collect();
            let opener = self.clone();
            std::thread::spawn(move || {
                if let Err(e) = opener.run(&mine, &tx) {
                    let _ = tx.blocking_send(Err(e));
                }
            });
            receivers.push(rx);
        }
        let state = Ordered {
            readers: receivers,
            unit: 0,
            units: units.len(),
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            while st.unit < st.units {
                let k = st.unit % st.readers.len();
                match st.readers[k].recv().await {
                    Some(Ok(Some(batch))) => return Some((Ok(batch), st)),
                    Some(Ok(None)) => st.unit += 1,
                    Some(Err(e)) => {
                        st.unit = st.units;
                        return Some((Err(e), st));
                    }
                    // the reader stopped early: it reached the limit, so the rows are enough
                    None => return None,
                }
            }
            None
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.plan.schema),
            stream,
        ))
    }

    fn run(&self, units: &[FileRange], tx: &Sender) -> Result<()> {
        let mut p = Progress {
            builder: BatchBuilder::new(Arc::clone(&self.plan)),
            per_batch: self.plan.records_per_batch(self.batch_size),
            produced: 0,
            warnings: Warnings::default(),
            skipped: 0,
            first_skipped: None,
        };
        for unit in units {
            let flow = self.read_range(unit, &mut p, tx)?;
            self.report(&unit.path, &mut p);
            if p.builder.records() > 0 {
                p.produced += p.builder.rows();
                if tx.blocking_send(Ok(Some(p.builder.finish()?))).is_err() {
                    return Ok(());
                }
            }
            if matches!(flow, Flow::Stop) || tx.blocking_send(Ok(None)).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    fn read_range(&self, range: &FileRange, p: &mut Progress, tx: &Sender) -> Result<Flow> {
        let path = range.path.as_path();
        let threads = if range.extent == Extent::Whole {
            self.bgzf_threads
        } else {
            1
        };
        let mut input = VcfInput::open(path, threads)?;
        if input.header().samples != self.plan.sample_names {
            return Err(VcfError::Header {
                path: path.to_path_buf(),
                message: "samples differ from those of the table's first file".to_string(),
            }
            .into());
        }
        let mut line = Vec::new();
        let start = match &range.extent {
            Extent::Whole => 0,
            Extent::Bytes { start, .. } => *start,
            Extent::Chunks(chunks) => chunks.first().map_or(0, |c| c.0 >> 16),
        };
        let mut progress = UnitProgress {
            progress: self.progress.as_ref(),
            size: unit_bytes(range),
            start,
            reported: 0,
            lines: 0,
        };
        let flow = self.read_lines(range, &mut input, &mut line, &mut progress, p, tx)?;
        progress.finish();
        Ok(flow)
    }

    fn read_lines(
        &self,
        range: &FileRange,
        input: &mut VcfInput,
        line: &mut Vec<u8>,
        progress: &mut UnitProgress<'_>,
        p: &mut Progress,
        tx: &Sender,
    ) -> Result<Flow> {
        let path = range.path.as_path();
        match &range.extent {
            Extent::Whole => {
                while input.next_line(line)? {
                    progress.line(input);
                    let at = Location::Line(input.line_number());
                    if let Flow::Stop = self.take(line, at, path, p, tx)? {
                        return Ok(Flow::Stop);
                    }
                }
            }
            Extent::Bytes { start, end } => {
                let bgzf = input.kind().compression == Compression::Bgzf;
                let first = if bgzf {
                    next_bgzf_block(path, *start)?
                } else {
                    *start
                };
                let last = if bgzf {
                    next_bgzf_block(path, *end)?
                } else {
                    *end
                };
                let (first, last) = if bgzf {
                    (first << 16, last << 16)
                } else {
                    (first, last)
                };
                if *start > 0 {
                    input.seek(first)?;
                    // the line under the range's first byte belongs to the range before
                    input.skip_line()?;
                }
                loop {
                    let Some(pos) = input.position() else { break };
                    if pos > last || !input.next_line(line)? {
                        break;
                    }
                    progress.line(input);
                    if line.first() == Some(&b'#') {
                        continue;
                    }
                    if let Flow::Stop = self.take(line, Location::Position(pos), path, p, tx)? {
                        return Ok(Flow::Stop);
                    }
                }
            }
            Extent::Chunks(chunks) => {
                for &(start, end) in chunks {
                    input.seek(start)?;
                    loop {
                        let Some(pos) = input.position() else { break };
                        if pos >= end || !input.next_line(line)? {
                            break;
                        }
                        progress.line(input);
                        if let Flow::Stop = self.take(line, Location::Position(pos), path, p, tx)? {
                            return Ok(Flow::Stop);
                        }
                    }
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// Decodes one record line into the batch (if it is in the regions), sending full batches.
    fn take(
        &self,
        line: &[u8],
        at: Location,
        path: &Path,
        p: &mut Progress,
        tx: &Sender,
    ) -> Result<Flow> {
        p.warnings.line = at.line().unwrap_or(0);
        let outcome = if self.plan.columns.is_empty() && self.regions.is_empty() {
            // count(*): a record line is a record; nothing to decode
            p.builder.append_empty();
            Ok(())
        } else {
            split_record(line).and_then(|rec| {
                if self.in_regions(&rec) {
                    p.builder.append(&rec, &mut p.warnings)
                } else {
                    Ok(())
                }
            })
        };
        if let Err(message) = outcome {
            let line_no = at.resolve(path);
            if !self.skip_errors {
                return Err(VcfError::Data {
                    path: path.to_path_buf(),
                    line: line_no,
                    message,
                }
                .into());
            }
            p.skipped += 1;
            p.first_skipped
                .get_or_insert_with(|| format!("line {line_no}: {message}"));
            return Ok(Flow::Continue);
        }
        let limit_reached = self
            .limit
            .is_some_and(|l| p.produced + p.builder.rows() >= l);
        if p.builder.records() >= p.per_batch || limit_reached {
            p.produced += p.builder.rows();
            if tx.blocking_send(Ok(Some(p.builder.finish()?))).is_err() || limit_reached {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    fn in_regions(&self, rec: &RecordFields<'_>) -> bool {
        if self.regions.is_empty() {
            return true;
        }
        let mut end = None;
        self.regions.iter().any(|r| {
            r.chrom.as_bytes() == rec.chrom
                && rec.pos <= r.end
                && (rec.pos >= r.start || *end.get_or_insert_with(|| record_end(rec)) >= r.start)
        })
    }

    fn report(&self, path: &Path, p: &mut Progress) {
        for w in std::mem::take(&mut p.warnings).summary() {
            log::warn!("{}: {w}", path.display());
        }
        if p.skipped > 0 {
            log::warn!(
                "{}: skipped {} unreadable line(s) (vcf.on_error = 'skip'); first: {}",
                path.display(),
                p.skipped,
                p.first_skipped.take().unwrap_or_default()
            );
            p.skipped = 0;
        }
    }
}

/// Where a record line is: its line number, or (after a seek) its position in the file.
#[derive(Debug, Clone, Copy)]
enum Location {
    Line(Option<usize>),
    Position(u64),
}

impl Location {
    fn line(self) -> Option<usize> {
        match self {
            Location::Line(l) => l,
            Location::Position(_) => None,
        }
    }

    /// The line number, counting from the start of the file when only the position is known.
    fn resolve(self, path: &Path) -> usize {
        match self {
            Location::Line(l) => l.unwrap_or(0),
            Location::Position(pos) => line_at(path, pos).unwrap_or(0),
        }
    }
}
