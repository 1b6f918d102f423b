//! Dividing a scan into partitions: several files, byte ranges of one large file (split at
//! BGZF block boundaries when the file is read), or the chunks a tabix/CSI index gives for
//! the queried regions.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use noodles::core::Position;
use noodles::csi::BinningIndex;

use super::input::{Compression, Container, VcfInput, sniff};
use super::opener::{Extent, FileRange};
use super::region::Region;
use crate::error::VcfError;

/// Index chunks adding up to less than this are read as one unit.
const MIN_CHUNKS: u64 = 1 << 20;

/// At most this many units per file.
const MAX_UNITS: u64 = 1 << 16;

/// The units of work of a scan, in file order, and which index (if any) narrowed it.
#[derive(Debug, Clone)]
pub struct ScanLayout {
    /// Files, byte ranges and index chunks, in the order of the records in the files.
    pub units: Vec<FileRange>,
    /// `tbi`, `csi`, `partial` (some files indexed), or `none`.
    pub index: &'static str,
}

impl ScanLayout {
    /// Deals the units out to at most `n` partitions (for scans that need not keep file order).
    pub fn partitions(&self, n: usize) -> Vec<Vec<FileRange>> {
        let n = self.units.len().clamp(1, n.max(1));
        let mut partitions: Vec<Vec<FileRange>> = vec![Vec::new(); n];
        for (i, u) in self.units.iter().enumerate() {
            partitions[i % n].push(u.clone());
        }
        partitions
    }
}

/// A loaded index, shared between scans.
type SharedIndex = Arc<dyn BinningIndex + Send + Sync>;

/// Indexes read recently, by path, size and modification time: a server or shell running
/// many region queries over the same files parses each index once (a 1 MiB `.tbi` takes tens
/// of milliseconds). A file that changes gets a new entry.
struct IndexCache {
    entries: Mutex<Vec<(IndexKey, SharedIndex, &'static str)>>,
}

type IndexKey = (PathBuf, u64, Option<SystemTime>);

/// Indexes kept at most.
const CACHED_INDEXES: usize = 32;

static INDEXES: IndexCache = IndexCache {
    entries: Mutex::new(Vec::new()),
};

impl IndexCache {
    fn get(&self, key: &IndexKey) -> Option<(SharedIndex, &'static str)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, index, kind)| (Arc::clone(index), *kind))
    }

    fn put(&self, key: IndexKey, index: SharedIndex, kind: &'static str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(k, _, _)| k.0 != key.0);
        if entries.len() >= CACHED_INDEXES {
            entries.remove(0);
        }
        entries.push((key, index, kind));
    }
}

/// An index next to `path` (`path.tbi`, `path.csi`), loaded (or taken from the cache).
fn load_index(path: &Path) -> Result<Option<(SharedIndex, &'static str)>, VcfError> {
    let with = |ext: &str| PathBuf::from(format!("{}.{ext}", path.display()));
    for (file, kind) in [(with("tbi"), "tbi"), (with("csi"), "csi")] {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let key = (file.clone(), meta.len(), meta.modified().ok());
        if let Some(found) = INDEXES.get(&key) {
            return Ok(Some(found));
        }
        let index: SharedIndex = if kind == "tbi" {
            Arc::new(noodles::tabix::fs::read(&file).map_err(|e| VcfError::io(&file, e))?)
        } else {
            Arc::new(noodles::csi::fs::read(&file).map_err(|e| VcfError::io(&file, e))?)
        };
        INDEXES.put(key, Arc::clone(&index), kind);
        return Ok(Some((index, kind)));
    }
    Ok(None)
}

/// The contig names of the index beside `path` (tabix, or a CSI with names), in index order;
/// empty when there is none. htslib names contigs from the index when the header has no
/// `##contig` lines, so a file written from this one carries them.
pub fn index_contigs(path: &Path) -> Vec<String> {
    let Ok(Some((index, _))) = load_index(path) else {
        return Vec::new();
    };
    index
        .header()
        .map(|h| {
            h.reference_sequence_names()
                .iter()
                .map(|n| String::from_utf8_lossy(n.as_ref()).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The merged virtual-position chunks that may hold records overlapping `regions`. Contigs
/// are found by name in the index (tabix, CSI of VCF) or, for a CSI of BCF (which has no
/// names), in the BCF header's contig dictionary `contigs`.
fn index_chunks(
    index: &dyn BinningIndex,
    regions: &[Region],
    index_path: &Path,
    contigs: Option<&[String]>,
) -> Result<Vec<(u64, u64)>, VcfError> {
    let names = index.header().map(|h| h.reference_sequence_names());
    if names.is_none() && contigs.is_none() {
        return Err(VcfError::Invalid(format!(
            "{}: index has no contig names",
            index_path.display()
        )));
    }
    let id_of = |chrom: &str| match (&names, contigs) {
        (Some(names), _) => names.get_index_of(chrom.as_bytes()),
        (None, Some(contigs)) => contigs.iter().position(|c| c == chrom),
        (None, None) => None,
    };
    let max = 1i64 << (u32::from(index.min_shift()) + 3 * u32::from(index.depth())).min(62);
    let mut chunks = Vec::new();
    for r in regions {
        let Some(id) = id_of(&r.chrom) else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::try_from(r.start.clamp(1, max - 1)),
            usize::try_from(r.end.clamp(1, max - 1)),
        ) else {
            continue;
        };
        let (Some(start), Some(end)) = (Position::new(start), Position::new(end)) else {
            continue;
        };
        let found = index
            .query(id, (start..=end).into())
            .map_err(|e| VcfError::io(index_path, e))?;
        chunks.extend(
            found
                .iter()
                .map(|c| (u64::from(c.start()), u64::from(c.end()))),
        );
    }
    chunks.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(chunks.len());
    for (s, e) in chunks {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    Ok(merged)
}

/// Splits `chunks` into at most `n` runs of similar compressed size.
fn split_chunks(chunks: Vec<(u64, u64)>, n: usize) -> Vec<Vec<(u64, u64)>> {
    let size = |c: &(u64, u64)| (c.1 >> 16).saturating_sub(c.0 >> 16) + 1;
    let total: u64 = chunks.iter().map(size).sum();
    let groups = (total / MIN_CHUNKS).clamp(1, n as u64);
    let target = total.div_ceil(groups);
    let mut out: Vec<Vec<(u64, u64)>> = vec![Vec::new()];
    let mut acc = 0;
    for c in chunks {
        if acc >= target && (out.len() as u64) < groups {
            out.push(Vec::new());
            acc = 0;
        }
        acc += size(&c);
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

/// Plans the units of a scan of `files`: files are split into byte ranges of about `min_split`
/// bytes, and index chunks are grouped to about 1 MiB. Small units keep every reader of an
/// ordered scan busy, since a reader can finish a unit (into its channel) while the units
/// before it are being consumed. With `regions`, indexed BGZF files are read through their
/// index; other files are read whole and filtered.
pub fn plan(
    files: &[PathBuf],
    regions: Option<&[Region]>,
    min_split: u64,
) -> Result<ScanLayout, VcfError> {
    let mut units: Vec<FileRange> = Vec::new();
    let mut index_used: Option<&'static str> = None;
    let mut unindexed = false;
    for path in files {
        let kind = sniff(path)?;
        if let Some(regions) = regions
            && kind.compression == Compression::Bgzf
            && let Some((index, name)) = load_index(path)?
        {
            let contigs = match kind.container {
                Container::Bcf => VcfInput::open(path, 1)?
                    .bcf_dictionary()
                    .map(|d| d.contigs.clone()),
                Container::Vcf => None,
            };
            let chunks = index_chunks(index.as_ref(), regions, path, contigs.as_deref())?;
            index_used = Some(name);
            units.extend(
                split_chunks(chunks, MAX_UNITS as usize)
                    .into_iter()
                    .filter(|g| !g.is_empty())
                    .map(|g| FileRange {
                        path: path.clone(),
                        extent: Extent::Chunks(g),
                    }),
            );
            continue;
        }
        unindexed |= regions.is_some();
        let size = std::fs::metadata(path)
            .map_err(|e| VcfError::io(path, e))?
            .len();
        // VCF text splits at line ends (plain or BGZF); BCF at the BGZF blocks where records
        // begin (plain BCF has no blocks to find them by)
        let splittable = match kind.container {
            Container::Vcf => kind.compression != Compression::Gzip,
            Container::Bcf => kind.compression == Compression::Bgzf,
        };
        let ranges = if splittable {
            (size / min_split.max(1)).clamp(1, MAX_UNITS)
        } else {
            1
        };
        if ranges <= 1 {
            units.push(FileRange {
                path: path.clone(),
                extent: Extent::Whole,
            });
        } else {
            let step = size.div_ceil(ranges);
            for k in 0..ranges {
                let (start, end) = (k * step, ((k + 1) * step).min(size));
                units.push(FileRange {
                    path: path.clone(),
                    extent: Extent::Bytes { start, end },
                });
            }
        }
    }
    let index = match (index_used, unindexed) {
        (Some(name), false) => name,
        (Some(_), true) => "partial",
        (None, _) => "none",
    };
    Ok(ScanLayout { units, index })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_by_size() {
        let mb = |m: u64| (m << 20) << 16;
        let chunks = vec![(0, mb(3)), (mb(3), mb(6)), (mb(6), mb(9)), (mb(9), mb(12))];
        let groups = split_chunks(chunks.clone(), 2);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups.concat(), chunks);
        assert_eq!(
            split_chunks(vec![(0, 100)], 4).len(),
            1,
            "small reads stay in one partition"
        );
    }
}
