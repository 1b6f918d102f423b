//! One partition (files, byte ranges or index chunks) → a stream of record batches, decoded
//! on a thread of its own.
//!
//! Reader threads ([`crate::readers`]) send batches through channels of a few slots, so at
//! most a few batches are in memory per reader; when the consumer goes away (LIMIT
//! satisfied, query cancelled) the next send fails and the thread stops reading. Each reader
//! says why it stopped, so a scan never ends early in silence.
//!
//! A byte range owns the lines that start after its first byte and at or before its last
//! (the first range of a file also owns the line at its start), so adjacent ranges split a
//! file without losing or repeating a line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalExpr;

use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::metrics::Count;

use super::batch::{BatchBuilder, DecodePlan};
use super::bcf::BcfRecord;
use super::input::{
    BcfDictionary, Compression, Container, VcfInput, bcf_records_from, line_at, next_bgzf_block,
};
use super::late::{LateDecoder, LatePlan};
use super::record::{RecordFields, record_end, split_record};
use super::region::Region;
use super::warnings::{Location, ScanReport, Warnings};
use crate::error::VcfError;
use crate::readers::{self, Ending, Flow, Outlet};

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
    /// Where warnings and skipped lines are gathered, to be reported once per file.
    pub report: Option<Arc<ScanReport>>,
    /// Filters the scan evaluates itself, in its reader threads.
    pub filter: Option<ScanFilter>,
}

/// Filters evaluated by the readers (pushed down as exact): the predicate over the decoded
/// columns, and which of those columns the query outputs (the filters may read more).
#[derive(Debug, Clone)]
pub struct ScanFilter {
    /// The conjunction of the filters, over [`DecodePlan::schema`].
    pub predicate: Arc<dyn PhysicalExpr>,
    /// Indices of the output columns in the decoded ones.
    pub output: Vec<usize>,
    /// The output schema.
    pub schema: SchemaRef,
}

impl VcfOpener {
    /// The schema of the batches the scan sends.
    pub fn output_schema(&self) -> SchemaRef {
        match &self.filter {
            Some(f) => Arc::clone(&f.schema),
            None => Arc::clone(&self.plan.schema),
        }
    }
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
        if !self.lines.is_multiple_of(Self::EVERY) {
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

/// State of one reader's work, across its units.
struct Progress {
    builder: BatchBuilder,
    /// Decodes in two phases instead of `builder`, when the scan's filters allow
    /// ([`super::late`]).
    late: Option<LateDecoder>,
    per_batch: usize,
    produced: usize,
    batches: usize,
    warnings: Warnings,
}

impl Progress {
    /// Records taken for the batch being built.
    fn records(&self) -> usize {
        match &self.late {
            Some(late) => late.len(),
            None => self.builder.records(),
        }
    }

    /// Rows of the batch being built, before the scan's filters.
    fn rows(&self) -> usize {
        match &self.late {
            Some(late) => late.len(),
            None => self.builder.rows(),
        }
    }
}

/// Whether a reader goes on after a unit or a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Continue,
    /// The scan's limit is reached.
    Limit,
    /// The consumer is gone.
    Abandoned,
}

/// What a unit is, in errors: `calls.vcf.gz`, `calls.vcf.gz bytes 0..1048576`,
/// `calls.vcf.gz index chunks 3`.
pub fn describe(unit: &FileRange) -> String {
    let path = unit.path.display();
    match &unit.extent {
        Extent::Whole => path.to_string(),
        Extent::Bytes { start, end } => format!("{path} bytes {start}..{end}"),
        Extent::Chunks(chunks) => format!("{path} ({} index chunk(s))", chunks.len()),
    }
}

impl VcfOpener {
    /// Reads `units` with `readers` threads, unit `i` on reader `i % readers`, and yields the
    /// batches in unit order (see [`crate::readers`]): records come out in file order,
    /// decoded in parallel, with at most a few batches waiting per reader. The stream ends
    /// after the last unit or the limit, and fails when a reader fails.
    pub fn open(&self, units: Vec<FileRange>, readers: usize) -> Result<SendableRecordBatchStream> {
        let n = readers.clamp(1, units.len().max(1));
        let mut started = Vec::with_capacity(n);
        for k in 0..n.min(units.len()) {
            let mine: Vec<FileRange> = units.iter().skip(k).step_by(n).cloned().collect();
            let opener = self.clone();
            let first = describe(&mine[0]);
            started.push(readers::spawn(
                format!("vcf-reader-{k}"),
                first,
                move |out| opener.run(&mine, out),
            )?);
        }
        let names = units.iter().map(describe).collect();
        let on_end = self
            .report
            .as_ref()
            .map(|r| Box::new(r.attach()) as Box<dyn Send>);
        Ok(readers::ordered_stream(
            self.output_schema(),
            started,
            names,
            on_end,
        ))
    }

    fn run(&self, units: &[FileRange], out: &Outlet) -> Result<Ending> {
        let late = match &self.filter {
            Some(filter) => {
                LatePlan::new(&self.plan, filter)?.map(|plan| LateDecoder::new(Arc::new(plan)))
            }
            None => None,
        };
        let mut p = Progress {
            builder: BatchBuilder::new(Arc::clone(&self.plan)),
            late,
            per_batch: self.plan.records_per_batch(self.batch_size),
            produced: 0,
            batches: 0,
            warnings: Warnings::default(),
        };
        for unit in units {
            out.begin_unit(describe(unit));
            let step = self.read_range(unit, &mut p, out);
            if let Some(report) = &self.report {
                report.merge(&unit.path, &mut p.warnings);
            }
            let step = step?;
            if step == Step::Continue
                && p.records() > 0
                && self.emit(&unit.path, &mut p, out)? == Step::Abandoned
            {
                return Ok(Ending::Abandoned);
            }
            match step {
                Step::Limit => return Ok(Ending::LimitReached),
                Step::Abandoned => return Ok(Ending::Abandoned),
                Step::Continue => {}
            }
            if out.unit_done() == Flow::Abandoned {
                return Ok(Ending::Abandoned);
            }
        }
        Ok(Ending::Finished)
    }

    /// Sends the batch being built: its rows that pass the scan's filters, in the columns
    /// the query asked for.
    fn emit(&self, path: &Path, p: &mut Progress, out: &Outlet) -> Result<Step> {
        let mut batch = match &mut p.late {
            Some(late) => late.finish(&mut p.warnings, |at, message| {
                self.failed(message, at, path)
            })?,
            None => p.builder.finish()?,
        };
        if let Some(filter) = self.filter.as_ref().filter(|_| p.late.is_none()) {
            let mask = filter
                .predicate
                .evaluate(&batch)
                .and_then(|m| m.into_array(batch.num_rows()))?;
            batch = filter_record_batch(&batch, mask.as_boolean())?.project(&filter.output)?;
        }
        p.produced += batch.num_rows();
        readers::fault_point(|| path.display().to_string(), p.batches);
        p.batches += 1;
        if batch.num_rows() == 0 && self.filter.is_some() {
            return Ok(Step::Continue);
        }
        Ok(match out.send(batch) {
            Flow::Continue => Step::Continue,
            Flow::Abandoned => Step::Abandoned,
        })
    }

    fn read_range(&self, range: &FileRange, p: &mut Progress, out: &Outlet) -> Result<Step> {
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
        let step = match input.kind().container {
            Container::Vcf => {
                self.read_lines(range, &mut input, &mut line, &mut progress, p, out)?
            }
            Container::Bcf => self.read_records(range, &mut input, &mut progress, p, out)?,
        };
        progress.finish();
        Ok(step)
    }

    /// Reads the BCF records of a unit. A byte range owns the records that begin in the BGZF
    /// blocks from the first block at or after its start at which records begin, up to the
    /// same block for its end (see [`bcf_records_from`]): neighbours agree on the boundary, and
    /// a record that would straddle it is an error, not a record read twice or lost.
    fn read_records(
        &self,
        range: &FileRange,
        input: &mut VcfInput,
        progress: &mut UnitProgress<'_>,
        p: &mut Progress,
        out: &Outlet,
    ) -> Result<Step> {
        let path = range.path.as_path();
        let Some(dictionary) = input.bcf_dictionary().cloned() else {
            return datafusion::common::internal_err!("{}: no BCF dictionary", path.display());
        };
        let spans: Vec<(Option<u64>, u64)> = match &range.extent {
            Extent::Whole => vec![(None, u64::MAX)],
            Extent::Chunks(chunks) => chunks.iter().map(|&(s, e)| (Some(s), e)).collect(),
            Extent::Bytes { start, end } => {
                let size = std::fs::metadata(path)
                    .map_err(|e| VcfError::io(path, e))?
                    .len();
                let first = if *start == 0 {
                    None
                } else {
                    Some(bcf_records_from(path, *start, &dictionary)?)
                };
                let last = if *end >= size {
                    u64::MAX
                } else {
                    bcf_records_from(path, *end, &dictionary)?
                };
                vec![(first, last)]
            }
        };
        let exact_end = matches!(range.extent, Extent::Bytes { .. });
        for (first, last) in spans {
            if let Some(first) = first {
                if first == u64::MAX || first >= last {
                    continue;
                }
                input.seek(first)?;
            }
            loop {
                let pos = input.position();
                if let Some(pos) = pos
                    && pos >= last
                {
                    if exact_end && pos != last {
                        return Err(VcfError::Header {
                            path: path.to_path_buf(),
                            message: format!(
                                "a BCF record runs past the block where the next part of the                                  scan starts (virtual position {pos:#x}, expected {last:#x});                                  read the file in larger parts (vcf.min_split_bytes)"
                            ),
                        }
                        .into());
                    }
                    break;
                }
                progress.line(input);
                let Some((rec, line)) = input.next_record()? else {
                    break;
                };
                // after a seek the line number is unknown: the position stands for it
                let at = match line {
                    Some(line) => Location::Line(line),
                    None => Location::Position(pos.unwrap_or(0)),
                };
                p.warnings.at = at;
                let outcome = if self.plan.columns.is_empty() && self.regions.is_empty() {
                    p.builder.append_empty();
                    Ok(())
                } else if self.in_regions_bcf(rec, &dictionary) {
                    match &mut p.late {
                        Some(late) => {
                            late.push_bcf(rec, &dictionary, at);
                            Ok(())
                        }
                        None => p.builder.append_bcf(rec, &dictionary, &mut p.warnings),
                    }
                } else {
                    Ok(())
                };
                let step = self.settle(outcome, at, path, p, out)?;
                if step != Step::Continue {
                    return Ok(step);
                }
            }
        }
        Ok(Step::Continue)
    }

    fn in_regions_bcf(&self, rec: &BcfRecord, dictionary: &BcfDictionary) -> bool {
        if self.regions.is_empty() {
            return true;
        }
        let Some(chrom) = usize::try_from(rec.chrom())
            .ok()
            .and_then(|c| dictionary.contigs.get(c))
        else {
            return false;
        };
        let (pos, end) = (rec.pos(), rec.pos() + rec.rlen().max(1) - 1);
        self.regions
            .iter()
            .any(|r| r.overlaps(chrom.as_bytes(), pos, end))
    }

    fn read_lines(
        &self,
        range: &FileRange,
        input: &mut VcfInput,
        line: &mut Vec<u8>,
        progress: &mut UnitProgress<'_>,
        p: &mut Progress,
        out: &Outlet,
    ) -> Result<Step> {
        let path = range.path.as_path();
        match &range.extent {
            Extent::Whole => {
                while input.next_line(line)? {
                    progress.line(input);
                    let at = Location::Line(input.line_number().unwrap_or(0));
                    let step = self.take(line, at, path, p, out)?;
                    if step != Step::Continue {
                        return Ok(step);
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
                while let Some(pos) = input.position() {
                    if pos > last || !input.next_line(line)? {
                        break;
                    }
                    progress.line(input);
                    if line.first() == Some(&b'#') {
                        continue;
                    }
                    let step = self.take(line, Location::Position(pos), path, p, out)?;
                    if step != Step::Continue {
                        return Ok(step);
                    }
                }
            }
            Extent::Chunks(chunks) => {
                for &(start, end) in chunks {
                    input.seek(start)?;
                    while let Some(pos) = input.position() {
                        if pos >= end || !input.next_line(line)? {
                            break;
                        }
                        progress.line(input);
                        let step = self.take(line, Location::Position(pos), path, p, out)?;
                        if step != Step::Continue {
                            return Ok(step);
                        }
                    }
                }
            }
        }
        Ok(Step::Continue)
    }

    /// Decodes one record line into the batch (if it is in the regions), sending full batches.
    fn take(
        &self,
        line: &[u8],
        at: Location,
        path: &Path,
        p: &mut Progress,
        out: &Outlet,
    ) -> Result<Step> {
        p.warnings.at = at;
        let outcome = if self.plan.columns.is_empty() && self.regions.is_empty() {
            // count(*): a record line is a record; nothing to decode
            p.builder.append_empty();
            Ok(())
        } else if let Some(late) = &mut p.late {
            // kept as it is for the two phases (taken apart here only for the regions)
            let rec = if self.regions.is_empty() {
                Ok(None)
            } else {
                split_record(line).map(Some)
            };
            rec.map(|rec| {
                if rec.is_none_or(|rec| self.in_regions(&rec)) {
                    late.push_line(line, at);
                }
            })
        } else {
            split_record(line).and_then(|rec| {
                if self.in_regions(&rec) {
                    p.builder.append(&rec, &mut p.warnings)
                } else {
                    Ok(())
                }
            })
        };
        self.settle(outcome, at, path, p, out)
    }

    /// What follows decoding one record: its error (fatal, or counted and skipped), then the
    /// batch sent when full or at the limit.
    fn settle(
        &self,
        outcome: std::result::Result<(), String>,
        at: Location,
        path: &Path,
        p: &mut Progress,
        out: &Outlet,
    ) -> Result<Step> {
        if let Err(message) = outcome {
            self.failed(message, at, path)?;
            return Ok(Step::Continue);
        }
        // rows the scan's filters may still drop do not count towards the limit until filtered
        let may_reach = self.limit.is_some_and(|l| p.produced + p.rows() >= l);
        if p.records() >= p.per_batch || may_reach {
            if self.emit(path, p, out)? == Step::Abandoned {
                return Ok(Step::Abandoned);
            }
            if self.limit.is_some_and(|l| p.produced >= l) {
                return Ok(Step::Limit);
            }
        }
        Ok(Step::Continue)
    }

    /// A record at `at` that does not decode: the scan's error, or (`vcf.on_error = 'skip'`)
    /// counted in the report and skipped.
    fn failed(&self, message: String, at: Location, path: &Path) -> Result<()> {
        if !self.skip_errors {
            return Err(VcfError::Data {
                path: path.to_path_buf(),
                line: resolve(at, path),
                message,
            }
            .into());
        }
        if let Some(report) = &self.report {
            report.skipped(path, at, &message);
        }
        Ok(())
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
}

/// The line number at `at`, counting from the start of the file when only the position is
/// known.
fn resolve(at: Location, path: &Path) -> usize {
    match at {
        Location::Line(l) => l,
        Location::Position(pos) => line_at(path, pos).unwrap_or(0),
    }
}
