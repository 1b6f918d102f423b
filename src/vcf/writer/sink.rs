//! `VcfSink`: rows streamed into a VCF (plain or BGZF) or BCF file, with a tabix or CSI index
//! built in the same pass.
//!
//! Formatting and compression run on a thread of their own, fed through a channel of a few
//! batches, so memory stays bounded whatever the size of the output. The file is written under
//! a temporary name beside the target and renamed into place (after `fsync`) only when every
//! row is written: a failed statement leaves no partial file behind, and an existing file is
//! replaced only by a complete one.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::num::NonZero;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::DisplayAs;
use datafusion::physical_plan::DisplayFormatType;
use futures::StreamExt;
use noodles::bgzf;
use noodles::core::Position;
use noodles::csi::binning_index::Indexer as CsiIndexer;
use noodles::csi::binning_index::index::reference_sequence::bin::Chunk;
use noodles::csi::binning_index::index::reference_sequence::index::BinnedIndex;
use noodles::vcf::variant::io::Write as _;

use super::header::OutputHeader;
use super::record::{Columns, RecordWriter, Span};
use super::{Compression, Container, IndexKind, Source, WriteOptions, header_for};
use crate::error::VcfError;

/// Streams rows into a VCF or BCF file (see the module docs).
#[derive(Debug)]
pub struct VcfSink {
    path: PathBuf,
    schema: SchemaRef,
    columns: Columns,
    options: WriteOptions,
    /// What the first VCF table the query reads gives the header (and the samples, when no
    /// row tells).
    source: Option<Source>,
    /// The statement, for `##vcfqCommand`.
    command: Option<String>,
}

impl VcfSink {
    /// A sink writing rows of `schema` to `path`.
    pub fn new(
        path: PathBuf,
        schema: SchemaRef,
        columns: Columns,
        options: WriteOptions,
        source: Option<Source>,
        command: Option<String>,
    ) -> Self {
        VcfSink {
            path,
            schema,
            columns,
            options,
            source,
            command,
        }
    }
}

impl DisplayAs for VcfSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let o = &self.options;
        write!(
            f,
            "VcfSink: path={}, format={}, compression={}, index={}",
            self.path.display(),
            match o.format {
                Container::Vcf => "vcf",
                Container::Bcf => "bcf",
            },
            match o.compression {
                Compression::None => "none",
                Compression::Bgzf => "bgzf",
            },
            match o.index {
                None => "none",
                Some(IndexKind::Tbi) => "tbi",
                Some(IndexKind::Csi) => "csi",
            }
        )?;
        if let Some(s) = &o.samples {
            write!(f, ", samples={}", s.len())?;
        }
        if !o.fill_tags.is_empty() {
            let tags: Vec<&str> = o.fill_tags.iter().map(|t| t.id()).collect();
            write!(f, ", fill_tags={}", tags.join(","))?;
        }
        Ok(())
    }
}

/// What the writer thread is sent.
enum Message {
    Batch(RecordBatch),
    /// The input ended without an error: the file may be put in place.
    End,
}

#[async_trait]
impl DataSink for VcfSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Message>(2);
        let job = Job {
            path: self.path.clone(),
            schema: Arc::clone(&self.schema),
            columns: self.columns.clone(),
            options: self.options.clone(),
            source: self.source.clone(),
            command: self.command.clone(),
        };
        let writer = tokio::task::spawn_blocking(move || job.run(rx));
        let mut failure = None;
        while let Some(batch) = data.next().await {
            match batch {
                Ok(b) => {
                    if tx.send(Message::Batch(b)).await.is_err() {
                        // the writer stopped: its error is the statement's
                        break;
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_none() {
            let _ = tx.send(Message::End).await;
        }
        drop(tx);
        let written = writer.await.map_err(|e| {
            DataFusionError::Execution(format!("{}: the writer failed: {e}", self.path.display()))
        })?;
        match failure {
            // the input's own error (a malformed line, say), not the writer's
            Some(e) => Err(e),
            None => written,
        }
    }
}

/// Everything the writer thread needs.
struct Job {
    path: PathBuf,
    schema: SchemaRef,
    columns: Columns,
    options: WriteOptions,
    source: Option<Source>,
    command: Option<String>,
}

static TEMPORARY: AtomicU64 = AtomicU64::new(0);

/// A name beside `path` for writing it before it is complete.
fn temporary_beside(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMPORARY.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(
        ".{name}{suffix}.vcfq-{}-{n}.tmp",
        std::process::id()
    ))
}

impl Job {
    fn run(self, rx: tokio::sync::mpsc::Receiver<Message>) -> Result<u64> {
        let data_tmp = temporary_beside(&self.path, "");
        let index_path = self.options.index.map(|kind| {
            let ext = match kind {
                IndexKind::Tbi => "tbi",
                IndexKind::Csi => "csi",
            };
            let mut name = self.path.as_os_str().to_os_string();
            name.push(".");
            name.push(ext);
            PathBuf::from(name)
        });
        let index_tmp = index_path.as_ref().map(|p| temporary_beside(p, ""));
        let result = self.write(rx, &data_tmp, index_tmp.as_deref());
        let finished = result.and_then(|rows| {
            std::fs::rename(&data_tmp, &self.path).map_err(|e| self.io(e))?;
            if let (Some(tmp), Some(path)) = (&index_tmp, &index_path) {
                std::fs::rename(tmp, path).map_err(|e| VcfError::io(path, e))?;
            }
            Ok(rows)
        });
        if finished.is_err() {
            let _ = std::fs::remove_file(&data_tmp);
            if let Some(tmp) = &index_tmp {
                let _ = std::fs::remove_file(tmp);
            }
        }
        finished.map_err(DataFusionError::from)
    }

    fn io(&self, e: io::Error) -> VcfError {
        VcfError::io(&self.path, e)
    }

    fn invalid(&self, message: impl Into<String>) -> VcfError {
        VcfError::Write {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn write(
        &self,
        mut rx: tokio::sync::mpsc::Receiver<Message>,
        data_tmp: &Path,
        index_tmp: Option<&Path>,
    ) -> Result<u64, VcfError> {
        let mut records = RecordWriter::new(
            &self.schema,
            self.columns.clone(),
            self.options.samples.clone(),
            self.options.fill_tags.clone(),
        )
        .map_err(|m| self.invalid(m))?;
        let file = File::create(data_tmp).map_err(|e| self.io(e))?;
        // the header waits for the first batch, whose genotypes name the samples
        let (first, mut ended) = match rx.blocking_recv() {
            Some(Message::Batch(b)) => (Some(b), false),
            Some(Message::End) => (None, true),
            None => return Err(self.invalid("the input failed")),
        };
        let samples = match &first {
            Some(b) => records.samples_of(b).map_err(|m| self.invalid(m))?,
            None => None,
        };
        let samples = match samples {
            Some(s) => s,
            None => records
                .set_samples(
                    self.source
                        .as_ref()
                        .map(|s| s.samples.clone())
                        .unwrap_or_default(),
                )
                .map_err(|m| self.invalid(m))?,
        };
        let header = self.header(&samples)?;
        let mut out = Output::open(file, &self.options, &header.text).map_err(|e| self.io(e))?;
        let mut index = match self.options.index {
            Some(kind) => Some(
                Indexing::new(kind, &self.options.format, &header.contigs)
                    .map_err(|m| self.invalid(m))?,
            ),
            None => None,
        };
        let mut rows = 0u64;
        let mut buffer = Vec::with_capacity(1 << 20);
        let mut spans = Vec::new();
        let mut next = first;
        loop {
            let batch = match next.take() {
                Some(b) => b,
                None if ended => break,
                None => match rx.blocking_recv() {
                    Some(Message::Batch(b)) => b,
                    Some(Message::End) => {
                        ended = true;
                        continue;
                    }
                    // the input failed: nothing is put in place
                    None => return Err(self.invalid("the input failed")),
                },
            };
            buffer.clear();
            spans.clear();
            records
                .write_batch(&batch, &mut buffer, index.is_some().then_some(&mut spans))
                .map_err(|e| self.invalid(e.to_string()))?;
            match &mut index {
                None => out.write_lines(&buffer).map_err(|e| self.io(e))?,
                Some(index) => {
                    let mut line_start = 0;
                    for span in &spans {
                        let start = out.virtual_position();
                        out.write_lines(&buffer[line_start..span.line_end])
                            .map_err(|e| self.io(e))?;
                        let end = out.virtual_position();
                        line_start = span.line_end;
                        index
                            .add(records.chrom(span.row), span, Chunk::new(start, end), rows)
                            .map_err(|m| self.invalid(m))?;
                    }
                }
            }
            rows += batch.num_rows() as u64;
        }
        out.finish().map_err(|e| self.io(e))?;
        if let (Some(index), Some(path)) = (index, index_tmp) {
            index.write(path).map_err(|e| VcfError::io(path, e))?;
        }
        Ok(rows)
    }

    fn header(&self, samples: &[String]) -> Result<OutputHeader, VcfError> {
        header_for(
            &self.schema,
            &self.columns,
            self.source.as_ref(),
            samples,
            &self.options,
            self.command.as_deref(),
        )
        .map_err(|e| self.invalid(e.to_string()))
    }
}

/// The file being written, in its container.
enum Output {
    Plain(BufWriter<File>),
    /// BGZF on this thread: virtual positions for an index.
    Bgzf(bgzf::io::Writer<File>),
    /// BGZF blocks compressed on several threads.
    BgzfParallel(bgzf::io::MultithreadedWriter<File>),
    Bcf {
        writer: noodles::bcf::io::Writer<bgzf::io::Writer<File>>,
        header: Box<noodles::vcf::Header>,
        record: noodles::vcf::Record,
    },
    BcfParallel {
        writer: noodles::bcf::io::Writer<bgzf::io::MultithreadedWriter<File>>,
        header: Box<noodles::vcf::Header>,
        record: noodles::vcf::Record,
    },
}

fn invalid_data(e: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl Output {
    fn open(file: File, options: &WriteOptions, header: &str) -> io::Result<Self> {
        let level = bgzf::io::writer::CompressionLevel::new(options.level).ok_or_else(|| {
            invalid_data(format!("compression level {} is not 0-9", options.level))
        })?;
        let threads = NonZero::new(options.threads.max(1)).expect("at least one");
        let serial = || -> io::Result<bgzf::io::Writer<File>> {
            Ok(bgzf::io::writer::Builder::default()
                .set_compression_level(level)
                .build_from_writer(file.try_clone()?))
        };
        let parallel = || {
            Ok::<_, io::Error>(
                bgzf::io::multithreaded_writer::Builder::default()
                    .set_compression_level(level)
                    .set_worker_count(threads)
                    .build_from_writer(file.try_clone()?),
            )
        };
        let indexed = options.index.is_some();
        let mut out = match (options.format, options.compression) {
            (Container::Vcf, Compression::None) => {
                Output::Plain(BufWriter::with_capacity(1 << 20, file.try_clone()?))
            }
            (Container::Vcf, Compression::Bgzf) if indexed => Output::Bgzf(serial()?),
            (Container::Vcf, Compression::Bgzf) => Output::BgzfParallel(parallel()?),
            (Container::Bcf, _) => {
                let parsed = noodles::vcf::io::Reader::new(header.as_bytes())
                    .read_header()
                    .map_err(|e| {
                        invalid_data(format!("the header cannot be written as BCF: {e}"))
                    })?;
                if indexed {
                    let mut writer = noodles::bcf::io::Writer::from(serial()?);
                    writer.write_header(&parsed)?;
                    Output::Bcf {
                        writer,
                        header: Box::new(parsed),
                        record: noodles::vcf::Record::default(),
                    }
                } else {
                    let mut writer = noodles::bcf::io::Writer::from(parallel()?);
                    writer.write_header(&parsed)?;
                    Output::BcfParallel {
                        writer,
                        header: Box::new(parsed),
                        record: noodles::vcf::Record::default(),
                    }
                }
            }
        };
        if options.format == Container::Vcf {
            out.write_lines(header.as_bytes())?;
        }
        Ok(out)
    }

    /// Writes whole VCF lines (for BCF, each becomes a BCF record).
    fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        match self {
            Output::Plain(w) => w.write_all(lines),
            Output::Bgzf(w) => w.write_all(lines),
            Output::BgzfParallel(w) => w.write_all(lines),
            Output::Bcf {
                writer,
                header,
                record,
            } => write_bcf(writer, header, record, lines),
            Output::BcfParallel {
                writer,
                header,
                record,
            } => write_bcf(writer, header, record, lines),
        }
    }

    fn virtual_position(&self) -> bgzf::VirtualPosition {
        match self {
            Output::Bgzf(w) => w.virtual_position(),
            Output::Bcf { writer, .. } => writer.get_ref().virtual_position(),
            _ => bgzf::VirtualPosition::default(),
        }
    }

    fn finish(self) -> io::Result<()> {
        let file = match self {
            Output::Plain(w) => w.into_inner().map_err(|e| e.into_error())?,
            Output::Bgzf(w) => w.finish()?,
            Output::BgzfParallel(mut w) => w.finish()?,
            Output::Bcf { writer, .. } => writer.into_inner().finish()?,
            Output::BcfParallel { writer, .. } => writer.into_inner().finish()?,
        };
        file.sync_all()
    }
}

fn write_bcf<W: Write>(
    writer: &mut noodles::bcf::io::Writer<W>,
    header: &noodles::vcf::Header,
    record: &mut noodles::vcf::Record,
    lines: &[u8],
) -> io::Result<()> {
    let mut reader = noodles::vcf::io::Reader::new(lines);
    while reader.read_record(record)? != 0 {
        writer.write_variant_record(header, record).map_err(|e| {
            invalid_data(format!(
                "{}:{}: cannot be written as BCF: {e}",
                record.reference_sequence_name(),
                record
                    .variant_start()
                    .and_then(|p| p.ok())
                    .map_or(0, usize::from)
            ))
        })?;
    }
    Ok(())
}

/// Checks that records come sorted (what an index needs): by contig, each contig in one run,
/// positions not decreasing within it.
#[derive(Debug, Default)]
pub struct SortCheck {
    current: Option<String>,
    last: i64,
    done: HashSet<String>,
}

impl SortCheck {
    /// Accepts the next record, or says how it breaks the order.
    pub fn next(&mut self, chrom: &str, pos: i64) -> Result<(), String> {
        if self.current.as_deref() == Some(chrom) {
            if pos < self.last {
                return Err(format!("{chrom}:{pos} comes after {chrom}:{}", self.last));
            }
        } else {
            if self.done.contains(chrom) {
                return Err(format!(
                    "{chrom}:{pos} comes after records of other contigs that followed {chrom}"
                ));
            }
            if let Some(previous) = self.current.take() {
                self.done.insert(previous);
            }
            self.current = Some(chrom.to_string());
        }
        self.last = pos;
        Ok(())
    }
}

/// The index being built while writing.
enum Indexing {
    Vcf {
        indexer: noodles::vcf::index::Indexer,
        order: SortCheck,
    },
    Bcf {
        indexer: CsiIndexer<BinnedIndex>,
        contigs: HashMap<String, usize>,
        order: SortCheck,
    },
}

impl Indexing {
    fn new(kind: IndexKind, format: &Container, contigs: &[String]) -> Result<Self, String> {
        Ok(match format {
            Container::Vcf => {
                let format = match kind {
                    IndexKind::Tbi => noodles::vcf::index::Format::Tabix,
                    IndexKind::Csi => noodles::vcf::index::Format::Csi,
                };
                Indexing::Vcf {
                    indexer: noodles::vcf::index::Indexer::builder()
                        .set_format(format)
                        .build()
                        .map_err(|e| format!("index: {e}"))?,
                    order: SortCheck::default(),
                }
            }
            Container::Bcf => Indexing::Bcf {
                indexer: CsiIndexer::default(),
                contigs: contigs
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.clone(), i))
                    .collect(),
                order: SortCheck::default(),
            },
        })
    }

    fn add(
        &mut self,
        chrom: &str,
        span: &Span,
        chunk: Chunk,
        rows_before: u64,
    ) -> Result<(), String> {
        let row = rows_before + span.row as u64 + 1;
        let order = match self {
            Indexing::Vcf { order, .. } | Indexing::Bcf { order, .. } => order,
        };
        order.next(chrom, span.start).map_err(|m| {
            format!(
                "row {row}: cannot index records that are not sorted ({m}); add OPTIONS ('sort' 'true') or ORDER BY the contig order and pos"
            )
        })?;
        let position = |p: i64| {
            usize::try_from(p)
                .ok()
                .and_then(Position::new)
                .ok_or_else(|| format!("row {row} ({chrom}:{p}): position {p} cannot be indexed"))
        };
        let (start, end) = (position(span.start)?, position(span.end)?);
        match self {
            Indexing::Vcf { indexer, .. } => indexer
                .add_record(chrom, start, end, chunk)
                .map_err(|e| format!("row {row} ({chrom}:{}): index: {e}", span.start)),
            Indexing::Bcf {
                indexer, contigs, ..
            } => {
                let id = *contigs.get(chrom).ok_or_else(|| {
                    format!("row {row}: contig '{chrom}' has no ##contig line, which BCF needs")
                })?;
                indexer
                    .add_record(Some((id, start, end, true)), chunk)
                    .map_err(|e| format!("row {row} ({chrom}:{}): index: {e}", span.start))
            }
        }
    }

    fn write(self, path: &Path) -> io::Result<()> {
        match self {
            Indexing::Vcf { indexer, .. } => match indexer.build() {
                noodles::vcf::Index::Tabix(index) => noodles::tabix::fs::write(path, &index),
                noodles::vcf::Index::Csi(index) => noodles::csi::fs::write(path, &index),
            },
            Indexing::Bcf {
                indexer, contigs, ..
            } => noodles::csi::fs::write(path, &indexer.build(contigs.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_check_wants_each_contig_in_one_run_in_position_order() {
        let mut s = SortCheck::default();
        for (c, p) in [
            ("chr1", 5),
            ("chr1", 5),
            ("chr1", 9),
            ("chr2", 1),
            ("chr10", 3),
        ] {
            s.next(c, p).unwrap();
        }
        assert_eq!(
            s.next("chr10", 2).unwrap_err(),
            "chr10:2 comes after chr10:3"
        );
        let mut s = SortCheck::default();
        s.next("chr1", 5).unwrap();
        s.next("chr2", 5).unwrap();
        assert!(s.next("chr1", 9).unwrap_err().contains("other contigs"));
    }
}
