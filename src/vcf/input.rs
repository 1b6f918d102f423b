//! Opening a variant file: compression and VCF-vs-BCF are detected from the first bytes, the
//! header is read, and the records come out as VCF text lines or, for BCF, as binary records
//! ([`super::bcf`]) decoded without a detour through text.
//!
//! Plain text, plain gzip, BGZF (`.vcf.gz`, `.vcf.bgz`, …) and BCF (compressed or not) all end
//! up as one [`VcfInput`], which knows where it is in the file (byte offset or BGZF virtual
//! position) so that scans can start and stop inside it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::num::NonZero;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use noodles::vcf;

use super::bcf::{BcfRecord, FormatBlock, Limits, SharedParts};
use super::header::VcfHeader;
use crate::error::VcfError;

/// How the bytes of a file are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip that is not BGZF (cannot be split or indexed).
    Gzip,
    /// Blocked gzip (BGZF), as written by bgzip/htslib.
    Bgzf,
}

/// The record encoding inside the (decompressed) stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// VCF text.
    Vcf,
    /// Binary BCF.
    Bcf,
}

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKind {
    /// Its compression.
    pub compression: Compression,
    /// VCF or BCF.
    pub container: Container,
}

const READ_BUFFER: usize = 256 * 1024;

/// Detects compression from the gzip magic and BGZF's `BC` extra field.
pub fn detect_compression(head: &[u8]) -> Compression {
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        // BGZF: FLG.FEXTRA set and the first extra subfield is 'B','C'.
        if head.len() >= 16 && head[3] & 4 != 0 && head[12] == b'B' && head[13] == b'C' {
            Compression::Bgzf
        } else {
            Compression::Gzip
        }
    } else {
        Compression::None
    }
}

fn open_file(path: &Path) -> Result<File, VcfError> {
    File::open(path).map_err(|source| VcfError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// A decompressing reader that knows where it is, so scans can start and stop at byte ranges
/// and index chunks.
// one per open file: the size of the largest variant does not matter, an indirection on every
// read would
#[allow(clippy::large_enum_variant)]
pub enum TextReader {
    /// Uncompressed, with the offset of the next byte (kept here: asking the file is a syscall).
    Plain(BufReader<File>, u64),
    /// gzip that is not BGZF: read from the start only.
    Gzip(BufReader<MultiGzDecoder<File>>),
    /// BGZF, decoded on the reading thread; seekable by virtual position.
    Bgzf(noodles::bgzf::io::Reader<File>),
    /// BGZF, blocks decoded on worker threads (whole-file scans).
    BgzfThreads(noodles::bgzf::io::MultithreadedReader<File>),
}

impl TextReader {
    fn open(path: &Path, compression: Compression, threads: usize) -> Result<Self, VcfError> {
        let file = open_file(path)?;
        Ok(match compression {
            Compression::None => TextReader::Plain(BufReader::with_capacity(READ_BUFFER, file), 0),
            Compression::Gzip => TextReader::Gzip(BufReader::with_capacity(
                READ_BUFFER,
                MultiGzDecoder::new(file),
            )),
            Compression::Bgzf if threads > 1 => {
                let workers = NonZero::new(threads).unwrap_or(NonZero::<usize>::MIN);
                TextReader::BgzfThreads(noodles::bgzf::io::MultithreadedReader::with_worker_count(
                    workers, file,
                ))
            }
            Compression::Bgzf => TextReader::Bgzf(noodles::bgzf::io::Reader::new(file)),
        })
    }

    fn buf_read(&mut self) -> &mut dyn BufRead {
        match self {
            TextReader::Plain(r, _) => r,
            TextReader::Gzip(r) => r,
            TextReader::Bgzf(r) => r,
            TextReader::BgzfThreads(r) => r,
        }
    }

    /// The position of the next byte: a byte offset (plain) or a BGZF virtual position packed
    /// into a u64 (compressed offset << 16 | offset in block); `None` for plain gzip.
    pub fn position(&mut self) -> Option<u64> {
        match self {
            TextReader::Plain(_, offset) => Some(*offset),
            TextReader::Gzip(_) => None,
            // loading the next block first makes "end of block c" read as "start of block c+1"
            TextReader::Bgzf(r) => {
                let _ = r.fill_buf();
                Some(u64::from(r.virtual_position()))
            }
            TextReader::BgzfThreads(r) => {
                let _ = r.fill_buf();
                Some(u64::from(r.virtual_position()))
            }
        }
    }

    /// Moves to a position as [`Self::position`] reports it.
    pub fn seek(&mut self, pos: u64) -> io::Result<()> {
        match self {
            TextReader::Plain(r, offset) => {
                r.seek(SeekFrom::Start(pos))?;
                *offset = pos;
                Ok(())
            }
            TextReader::Bgzf(r) => r.seek(noodles::bgzf::VirtualPosition::from(pos)).map(drop),
            TextReader::Gzip(_) | TextReader::BgzfThreads(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this reader cannot seek",
            )),
        }
    }
}

impl Read for TextReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.buf_read().read(buf)?;
        if let TextReader::Plain(_, offset) = self {
            *offset += n as u64;
        }
        Ok(n)
    }
}

impl BufRead for TextReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.buf_read().fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if let TextReader::Plain(_, offset) = self {
            *offset += amt as u64;
        }
        self.buf_read().consume(amt)
    }
}

/// The start of the first BGZF block at or after byte `offset` (the file's size when there is
/// none). A candidate header is accepted only when the block after it also starts with a BGZF
/// header or ends the file, so bytes inside compressed data are not mistaken for a block.
pub fn next_bgzf_block(path: &Path, offset: u64) -> Result<u64, VcfError> {
    const HEADER: [u8; 4] = [0x1f, 0x8b, 8, 4];
    let mut file = open_file(path)?;
    let size = file.metadata().map_err(|e| VcfError::io(path, e))?.len();
    if offset == 0 || offset >= size {
        return Ok(offset.min(size));
    }
    let mut window = vec![0u8; 2 * 65536 + 18];
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| VcfError::io(path, e))?;
    let n = read_up_to(&mut file, &mut window).map_err(|e| VcfError::io(path, e))?;
    let window = &window[..n];
    let is_block = |w: &[u8]| {
        w.len() >= 18 && w[..4] == HEADER && w[10] == 6 && w[12] == b'B' && w[13] == b'C'
    };
    for i in memchr::memchr_iter(0x1f, window) {
        if !is_block(&window[i..]) {
            continue;
        }
        let bsize = u64::from(u16::from_le_bytes([window[i + 16], window[i + 17]])) + 1;
        let next = offset + i as u64 + bsize;
        let next_ok = if next >= size {
            next == size
        } else {
            let mut head = [0u8; 18];
            file.seek(SeekFrom::Start(next))
                .map_err(|e| VcfError::io(path, e))?;
            let m = read_up_to(&mut file, &mut head).map_err(|e| VcfError::io(path, e))?;
            is_block(&head[..m])
        };
        if next_ok {
            return Ok(offset + i as u64);
        }
    }
    Ok(size)
}

/// Reads the first bytes of `path` (decompressing if needed) to tell what kind of file it is.
pub fn sniff(path: &Path) -> Result<FileKind, VcfError> {
    let mut head = [0u8; 18];
    let n = read_up_to(&mut open_file(path)?, &mut head).map_err(|e| VcfError::io(path, e))?;
    let compression = detect_compression(&head[..n]);
    let mut inner = [0u8; 3];
    let mut reader = TextReader::open(path, compression, 1)?;
    let m = read_up_to(&mut reader, &mut inner).map_err(|e| VcfError::io(path, e))?;
    let container = if &inner[..m] == b"BCF" {
        Container::Bcf
    } else {
        Container::Vcf
    };
    Ok(FileKind {
        compression,
        container,
    })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

enum Body {
    Text(TextReader),
    Bcf {
        reader: TextReader,
        dictionary: Arc<BcfDictionary>,
        record: BcfRecord,
    },
}

/// What BCF records refer to by number: the header's contigs and its dictionary of strings
/// (INFO, FORMAT and FILTER IDs), and the sizes a record must agree with.
#[derive(Debug, Clone, Default)]
pub struct BcfDictionary {
    /// Contig names by index.
    pub contigs: Vec<String>,
    /// INFO/FORMAT/FILTER IDs by index (`None` for an index the header leaves unused).
    pub strings: Vec<Option<String>>,
    /// The limits records are checked against.
    pub limits: Limits,
}

/// An open variant file: its header, then its records one text line at a time.
pub struct VcfInput {
    path: PathBuf,
    header: VcfHeader,
    kind: FileKind,
    body: Body,
    /// Line of the last record read; unknown after a seek.
    line_number: Option<usize>,
}

impl VcfInput {
    /// Opens `path`, detects its kind and reads the header. `threads` > 1 decodes BGZF blocks
    /// on that many threads.
    pub fn open(path: &Path, threads: usize) -> Result<Self, VcfError> {
        let kind = sniff(path)?;
        let mut reader = TextReader::open(path, kind.compression, threads)?;
        let (header, body) = match kind.container {
            Container::Vcf => (read_text_header(path, &mut reader)?, Body::Text(reader)),
            Container::Bcf => {
                let (header, dictionary) = read_bcf_header(path, &mut reader)?;
                let body = Body::Bcf {
                    reader,
                    dictionary: Arc::new(dictionary),
                    record: BcfRecord::default(),
                };
                (header, body)
            }
        };
        let line_number = Some(header.line_count);
        Ok(VcfInput {
            path: path.to_path_buf(),
            header,
            kind,
            body,
            line_number,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &VcfHeader {
        &self.header
    }

    /// What the file is.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line number of the record last returned by [`Self::next_line`] (for BCF, the record's
    /// ordinal plus the header's line count, i.e. its line in the equivalent VCF); `None` after
    /// a seek, when counting would mean reading from the start (see [`line_at`]).
    pub fn line_number(&self) -> Option<usize> {
        self.line_number
    }

    /// The position of the next line or record (see [`TextReader::position`]); `None` for
    /// plain gzip.
    pub fn position(&mut self) -> Option<u64> {
        match &mut self.body {
            Body::Text(r) | Body::Bcf { reader: r, .. } => r.position(),
        }
    }

    /// Moves to `pos` (as [`Self::position`] reports it); line numbers are unknown from then on.
    pub fn seek(&mut self, pos: u64) -> Result<(), VcfError> {
        match &mut self.body {
            Body::Text(r) | Body::Bcf { reader: r, .. } => {
                r.seek(pos).map_err(|e| VcfError::io(&self.path, e))?
            }
        }
        self.line_number = None;
        Ok(())
    }

    /// The BCF dictionary (`None` for VCF text).
    pub fn bcf_dictionary(&self) -> Option<&Arc<BcfDictionary>> {
        match &self.body {
            Body::Bcf { dictionary, .. } => Some(dictionary),
            Body::Text(_) => None,
        }
    }

    /// Reads the next BCF record, with its line number (the record's ordinal after the header
    /// lines, its line in the equivalent VCF; `None` after a seek); `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<(&BcfRecord, Option<usize>)>, VcfError> {
        let line = self.line_number.map(|l| l + 1);
        let Body::Bcf { reader, record, .. } = &mut self.body else {
            return Err(VcfError::Invalid(format!(
                "{}: not a BCF file",
                self.path.display()
            )));
        };
        match record.read_from(reader) {
            Ok(true) => {
                self.line_number = line;
                Ok(Some((record, line)))
            }
            Ok(false) => Ok(None),
            Err(e) => Err(match line {
                Some(line) => VcfError::Data {
                    path: self.path.clone(),
                    line,
                    message: format!("invalid BCF record: {e}"),
                },
                None => VcfError::io(&self.path, e),
            }),
        }
    }

    /// Discards the rest of the current line (after a seek into the middle of one).
    pub fn skip_line(&mut self) -> Result<(), VcfError> {
        if let Body::Text(r) = &mut self.body {
            let mut sink = Vec::new();
            r.read_until(b'\n', &mut sink)
                .map_err(|e| VcfError::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Reads the next record into `buf` as one VCF line without its terminator (`\n` or `\r\n`).
    /// Empty lines are skipped. Returns false at the end of the file.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> Result<bool, VcfError> {
        loop {
            buf.clear();
            match &mut self.body {
                Body::Text(reader) => {
                    let n = reader
                        .read_until(b'\n', buf)
                        .map_err(|e| self.read_error(e))?;
                    if n == 0 {
                        return Ok(false);
                    }
                    self.line_number = self.line_number.map(|l| l + 1);
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    if buf.is_empty() {
                        continue;
                    }
                    return Ok(true);
                }
                Body::Bcf { .. } => {
                    return Err(VcfError::Invalid(format!(
                        "{}: a BCF file has binary records, not lines",
                        self.path.display()
                    )));
                }
            }
        }
    }

    fn read_error(&self, e: io::Error) -> VcfError {
        match self.line_number {
            Some(l) => VcfError::Data {
                path: self.path.clone(),
                line: l + 1,
                message: format!("read failed: {e}"),
            },
            None => VcfError::io(&self.path, e),
        }
    }
}

/// The line number of the line starting at `pos` (as [`VcfInput::position`] reports it),
/// found by reading the file from its start: used only to name the line of an error met in a
/// scan that started in the middle of a file.
pub fn line_at(path: &Path, pos: u64) -> Option<usize> {
    lines_at(path, &[pos]).pop().flatten()
}

/// The line numbers of the lines starting at `positions` (ascending), in one pass over the
/// file; `None` for a position past the end (or for a file that has no positions).
pub fn lines_at(path: &Path, positions: &[u64]) -> Vec<Option<usize>> {
    let mut out = vec![None; positions.len()];
    if positions.is_empty() {
        return out;
    }
    let Ok(mut input) = VcfInput::open(path, 1) else {
        return out;
    };
    let mut line = input.header.line_count;
    let mut buf = Vec::new();
    let mut next = 0;
    while next < positions.len() {
        let Some(at) = input.position() else {
            return out;
        };
        while next < positions.len() && positions[next] <= at {
            out[next] = Some(line + 1);
            next += 1;
        }
        let more = match &mut input.body {
            Body::Text(reader) => {
                buf.clear();
                reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0)
            }
            Body::Bcf { reader, record, .. } => record.read_from(reader).unwrap_or(false),
        };
        if !more {
            return out;
        }
        line += 1;
    }
    out
}

/// Reads the BCF magic and header text. The text is parsed by our lenient parser (for the
/// schema) and, after adding the `Description` that some writers leave out, by noodles (whose
/// string maps — the dictionaries records refer to — we keep).
fn read_bcf_header(
    path: &Path,
    reader: &mut TextReader,
) -> Result<(VcfHeader, BcfDictionary), VcfError> {
    let bad = |message: String| VcfError::Header {
        path: path.to_path_buf(),
        message,
    };
    let mut magic = [0u8; 5];
    reader
        .read_exact(&mut magic)
        .map_err(|e| bad(format!("truncated BCF magic: {e}")))?;
    if &magic[..4] != b"BCF\x02" {
        return Err(bad(format!(
            "unsupported BCF version {}.{}",
            magic[3], magic[4]
        )));
    }
    let mut len = [0u8; 4];
    reader
        .read_exact(&mut len)
        .map_err(|e| bad(format!("truncated BCF header: {e}")))?;
    // the length comes from the file: read what is there instead of allocating what it says
    let declared = u64::from(u32::from_le_bytes(len));
    let mut text = Vec::with_capacity(declared.min(1 << 20) as usize);
    reader
        .by_ref()
        .take(declared)
        .read_to_end(&mut text)
        .map_err(|e| bad(format!("truncated BCF header: {e}")))?;
    if (text.len() as u64) < declared {
        return Err(bad(format!(
            "truncated BCF header: it says {declared} bytes, the file has {}",
            text.len()
        )));
    }
    while text.last() == Some(&0) {
        text.pop();
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    let header = VcfHeader::parse_text(&text).map_err(|e| bad(e.to_string()))?;
    let mut parser = vcf::header::Parser::default();
    let mut maps = vcf::header::StringMaps::default();
    for (i, line) in text.lines().enumerate() {
        let line = with_description(line);
        let entry = parser
            .parse_partial(line.as_bytes())
            .map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
        maps.insert_entry(&entry)
            .map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
    }
    // the parse checks the header as htslib would; the dictionaries are what records refer to
    parser.finish().map_err(|e| bad(e.to_string()))?;
    // the dictionary may have holes (IDX=…): its size is that of its largest index
    let ids = header
        .infos
        .iter()
        .chain(&header.formats)
        .map(|d| d.id.as_str())
        .chain(header.filters.iter().map(|(id, _)| id.as_str()))
        .chain(std::iter::once("PASS"));
    let size = ids
        .filter_map(|id| maps.strings().get_index_of(id))
        .max()
        .map_or(0, |m| m + 1);
    let strings: Vec<Option<String>> = (0..size)
        .map(|i| maps.strings().get_index(i).map(str::to_string))
        .collect();
    let mut contigs = Vec::new();
    while let Some(name) = maps.contigs().get_index(contigs.len()) {
        contigs.push(name.to_string());
    }
    let limits = Limits {
        contigs: contigs.len(),
        strings: strings.len(),
        samples: header.samples.len(),
    };
    let dictionary = BcfDictionary {
        contigs,
        strings,
        limits,
    };
    Ok((header, dictionary))
}

/// `##INFO`, `##FORMAT` and `##FILTER` lines written without a Description get an empty one.
fn with_description(line: &str) -> std::borrow::Cow<'_, str> {
    let structured = ["##INFO=<", "##FORMAT=<", "##FILTER=<"]
        .iter()
        .any(|p| line.starts_with(p));
    match line.strip_suffix('>') {
        Some(body) if structured && !line.contains("Description=") => {
            format!("{body},Description=\"\">").into()
        }
        _ => line.into(),
    }
}

/// Reads `##` lines and the `#CHROM` line. Stops after `#CHROM`, or at the first line that is
/// not a header line (which is then an error: the header has no `#CHROM` line).
fn read_text_header(path: &Path, reader: &mut TextReader) -> Result<VcfHeader, VcfError> {
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| VcfError::io(path, e))?;
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf)
            .trim_end_matches(['\n', '\r'])
            .to_string();
        let done = line.starts_with("#CHROM") || !line.starts_with('#');
        lines.push(line);
        if done {
            break;
        }
    }
    VcfHeader::parse_lines(lines.iter().map(String::as_str)).map_err(|e| VcfError::Header {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_gzip_and_bgzf() {
        assert_eq!(detect_compression(b"##fileformat"), Compression::None);
        assert_eq!(
            detect_compression(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]),
            Compression::Gzip
        );
        let bgzf = [
            0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0, 0x1b, 0,
        ];
        assert_eq!(detect_compression(&bgzf), Compression::Bgzf);
    }

    #[test]
    fn adds_missing_descriptions() {
        assert_eq!(
            with_description("##INFO=<ID=I16,Number=16,Type=Integer,IDX=2>"),
            "##INFO=<ID=I16,Number=16,Type=Integer,IDX=2,Description=\"\">"
        );
        assert_eq!(
            with_description("##INFO=<ID=DP,Description=\"x\">"),
            "##INFO=<ID=DP,Description=\"x\">"
        );
        assert_eq!(with_description("##contig=<ID=1>"), "##contig=<ID=1>");
    }
}

/// Bytes read past a block to check the records that follow a candidate start: enough for
/// small records; a larger window is read only when a candidate's record is longer.
const CHAIN_WINDOW: u64 = 1 << 16;

/// The largest window tried, for very long records (thousands of samples, many fields).
const MAX_CHAIN_WINDOW: u64 = 1 << 26;

/// What the bytes at a candidate record start say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Records begin here.
    Yes,
    /// Not a record start.
    No,
    /// The first record runs past the bytes read: read more to tell.
    Longer,
}

/// Whether BCF records begin at the start of `buf`: up to three records must each parse and
/// fill exactly their declared lengths (or the data ends after at least one). Bytes in the
/// middle of a record practically never pass.
fn records_start_in(buf: &[u8], limits: &Limits, at_eof: bool) -> Start {
    let mut record = BcfRecord::default();
    let mut shared = SharedParts::default();
    let mut formats: Vec<FormatBlock> = Vec::new();
    let mut rest = buf;
    for n in 0..3 {
        if rest.is_empty() {
            return if n > 0 { Start::Yes } else { Start::No };
        }
        if rest.len() < 8 {
            return if at_eof {
                Start::No
            } else if n > 0 {
                Start::Yes
            } else {
                Start::Longer
            };
        }
        let len = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let (l_shared, l_indiv) = (len(0) as u64, len(4) as u64);
        if l_shared < 24 {
            return Start::No;
        }
        let total = 8 + l_shared + l_indiv;
        if (rest.len() as u64) < total {
            // the bytes end inside this record: enough if one record was checked whole
            return match (n > 0, at_eof) {
                (true, _) => Start::Yes,
                (false, true) => Start::No,
                (false, false) if total <= MAX_CHAIN_WINDOW => Start::Longer,
                (false, false) => Start::No,
            };
        }
        let mut reader = &rest[..total as usize];
        if !matches!(record.read_from(&mut reader), Ok(true))
            || record.parse_shared(limits, &mut shared).is_err()
            || record.parse_formats(limits, &mut formats).is_err()
        {
            return Start::No;
        }
        rest = &rest[total as usize..];
    }
    Start::Yes
}

/// The size of the BGZF block at byte `block`, and of its data once inflated.
fn bgzf_block_sizes(path: &Path, block: u64) -> Result<(u64, u64), VcfError> {
    let mut file = open_file(path)?;
    let mut head = [0u8; 18];
    file.seek(SeekFrom::Start(block))
        .map_err(|e| VcfError::io(path, e))?;
    file.read_exact(&mut head)
        .map_err(|e| VcfError::io(path, e))?;
    let bsize = u64::from(u16::from_le_bytes([head[16], head[17]])) + 1;
    let mut isize = [0u8; 4];
    file.seek(SeekFrom::Start(block + bsize - 4))
        .map_err(|e| VcfError::io(path, e))?;
    file.read_exact(&mut isize)
        .map_err(|e| VcfError::io(path, e))?;
    Ok((bsize, u64::from(u32::from_le_bytes(isize))))
}

/// The virtual position of the first BCF record that begins in the first BGZF block at or
/// after byte `offset` that holds a record start (`u64::MAX` when none does). Records are not
/// aligned to blocks (htslib lets them straddle), so each offset of a block's data is tried as
/// a record start, checked by the records that follow it. Two readers that split a BCF file
/// at `offset` agree on the position, so each record is read once.
pub fn bcf_records_from(
    path: &Path,
    offset: u64,
    dictionary: &BcfDictionary,
) -> Result<u64, VcfError> {
    let size = std::fs::metadata(path)
        .map_err(|e| VcfError::io(path, e))?
        .len();
    let mut block = next_bgzf_block(path, offset)?;
    while block < size {
        let (_, inflated) = bgzf_block_sizes(path, block)?;
        // candidates first with a small window; those whose record is longer than it, only
        // when no candidate of the block is a record start, with larger windows
        let mut candidates: Vec<usize> = (0..(inflated as usize).min(1 << 16)).collect();
        let mut window = CHAIN_WINDOW;
        while !candidates.is_empty() {
            let mut reader = noodles::bgzf::io::Reader::new(open_file(path)?);
            reader
                .seek(noodles::bgzf::VirtualPosition::from(block << 16))
                .map_err(|e| VcfError::io(path, e))?;
            let mut bytes = Vec::new();
            reader
                .by_ref()
                .take(inflated + window)
                .read_to_end(&mut bytes)
                .map_err(|e| VcfError::io(path, e))?;
            let at_eof = (bytes.len() as u64) < inflated + window;
            let mut longer = Vec::new();
            for &i in candidates.iter().filter(|&&i| i < bytes.len()) {
                match records_start_in(&bytes[i..], &dictionary.limits, at_eof) {
                    Start::Yes => return Ok(block << 16 | i as u64),
                    Start::No => {}
                    Start::Longer => longer.push(i),
                }
            }
            if window >= MAX_CHAIN_WINDOW {
                break;
            }
            candidates = longer;
            window = (window * 16).min(MAX_CHAIN_WINDOW);
        }
        block = next_bgzf_block(path, block + 1)?;
    }
    Ok(u64::MAX)
}
