//! Warnings met while decoding (values read as NULL, fields outside the schema) and lines
//! skipped with `vcf.on_error = 'skip'`: counted per kind by each reader ([`Warnings`]),
//! gathered per file across the readers and partitions of a scan ([`ScanReport`]), and
//! reported once per file and kind, with the first line where each happened.
//!
//! Readers that start in the middle of a file know where a line is, not its number; the
//! numbers are counted from the start of the file only when the report is written, in one
//! pass per file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::input::lines_at;

/// Where a record line is: its line number, or (after a seek) its position in the file as
/// [`super::input::VcfInput::position`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// 1-based line number.
    Line(usize),
    /// Position of the line's first byte.
    Position(u64),
}

impl Default for Location {
    fn default() -> Self {
        Location::Line(0)
    }
}

/// One kind of warning: what it is about and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// `INFO/`, `FORMAT/` or nothing.
    prefix: &'static str,
    /// `DP`, `XY`.
    field: String,
    /// What happened, e.g. "not a 32-bit Integer, read as NULL".
    problem: &'static str,
    count: usize,
    first: Location,
    /// The value met first, when the problem is about a value.
    example: Option<String>,
}

/// Kinds of warnings kept at most per reader and per file (further kinds are not counted).
const MAX_KINDS: usize = 100;

/// Warnings of one reader while it reads a unit.
#[derive(Debug, Default)]
pub struct Warnings {
    entries: Vec<Entry>,
    /// The line being decoded.
    pub at: Location,
}

impl Warnings {
    /// Counts one occurrence of `problem` with the field `prefix` + `field` (`INFO/` + `XY`)
    /// at the current line; `example` gives the offending value (called only when needed).
    pub fn add(
        &mut self,
        prefix: &'static str,
        field: &[u8],
        problem: &'static str,
        example: impl FnOnce() -> Option<String>,
    ) {
        let at = self.at;
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.problem == problem && e.prefix == prefix && e.field.as_bytes() == field)
        {
            e.count += 1;
            if at < e.first {
                e.first = at;
                e.example = example();
            }
            return;
        }
        if self.entries.len() < MAX_KINDS {
            self.entries.push(Entry {
                prefix,
                field: String::from_utf8_lossy(field).into_owned(),
                problem,
                count: 1,
                first: at,
                example: example(),
            });
        }
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The kinds counted, as `(field: problem, count)`, for tests.
    pub fn kinds(&self) -> Vec<(String, usize)> {
        self.entries
            .iter()
            .map(|e| (format!("{}{}: {}", e.prefix, e.field, e.problem), e.count))
            .collect()
    }
}

/// What a scan met in one file.
#[derive(Debug, Default)]
struct FileReport {
    warnings: Vec<Entry>,
    skipped: usize,
    first_skipped: Option<(Location, String)>,
}

/// Warnings and skipped lines of a whole scan, by file; written to the log once, when the
/// last of the scan's output streams ends ([`ScanReport::attach`]). Readers merge what they
/// met in a unit before they hand the unit over, so the report is complete by then.
#[derive(Debug, Default)]
pub struct ScanReport {
    files: Mutex<BTreeMap<PathBuf, FileReport>>,
    streams: AtomicUsize,
}

/// Held by an output stream of a scan; the report is written when the last one is dropped.
#[derive(Debug)]
pub struct StreamGuard(Arc<ScanReport>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.0.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.flush();
        }
    }
}

impl ScanReport {
    /// Registers an output stream of the scan.
    pub fn attach(self: &Arc<Self>) -> StreamGuard {
        self.streams.fetch_add(1, Ordering::AcqRel);
        StreamGuard(Arc::clone(self))
    }

    /// Writes the report to the log and clears it.
    pub fn flush(&self) {
        for line in self.lines() {
            log::warn!("{line}");
        }
        self.files.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Adds a reader's warnings about `path` (leaving `warnings` empty).
    pub fn merge(&self, path: &Path, warnings: &mut Warnings) {
        if warnings.is_empty() {
            return;
        }
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let file = files.entry(path.to_path_buf()).or_default();
        for new in std::mem::take(&mut warnings.entries) {
            let known = file.warnings.iter().position(|e| {
                e.problem == new.problem && e.prefix == new.prefix && e.field == new.field
            });
            match known {
                Some(i) => {
                    let e = &mut file.warnings[i];
                    e.count += new.count;
                    if new.first < e.first {
                        e.first = new.first;
                        e.example = new.example;
                    }
                }
                None if file.warnings.len() < MAX_KINDS => file.warnings.push(new),
                None => {}
            }
        }
    }

    /// Counts a line of `path` skipped as unreadable, at `at`, because of `message`.
    pub fn skipped(&self, path: &Path, at: Location, message: &str) {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let file = files.entry(path.to_path_buf()).or_default();
        file.skipped += 1;
        if file
            .first_skipped
            .as_ref()
            .is_none_or(|(first, _)| at < *first)
        {
            file.first_skipped = Some((at, message.to_string()));
        }
    }

    /// The report's lines, one per file and kind, in file order and then by first line.
    pub fn lines(&self) -> Vec<String> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (path, file) in files.iter() {
            let mut positions: Vec<u64> = file
                .warnings
                .iter()
                .map(|e| e.first)
                .chain(file.first_skipped.iter().map(|(at, _)| *at))
                .filter_map(|at| match at {
                    Location::Position(p) => Some(p),
                    Location::Line(_) => None,
                })
                .collect();
            positions.sort_unstable();
            positions.dedup();
            let numbers = lines_at(path, &positions);
            let line_of = |at: Location| -> String {
                match at {
                    Location::Line(l) => l.to_string(),
                    Location::Position(p) => positions
                        .binary_search(&p)
                        .ok()
                        .and_then(|i| numbers.get(i).copied().flatten())
                        .map_or_else(|| "?".to_string(), |l| l.to_string()),
                }
            };
            let mut warnings: Vec<&Entry> = file.warnings.iter().collect();
            warnings.sort_by_key(|e| e.first);
            for e in warnings {
                let example = e
                    .example
                    .as_deref()
                    .map(|x| format!(" ('{x}')"))
                    .unwrap_or_default();
                out.push(format!(
                    "{}: {}{}: {} ({} time(s), first at line {}{example})",
                    path.display(),
                    e.prefix,
                    e.field,
                    e.problem,
                    e.count,
                    line_of(e.first)
                ));
            }
            if let Some((at, message)) = &file.first_skipped {
                out.push(format!(
                    "{}: skipped {} unreadable line(s) (vcf.on_error = 'skip'); first: line {}: {message}",
                    path.display(),
                    file.skipped,
                    line_of(*at)
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_kind_with_the_earliest_line() {
        let mut w = Warnings::default();
        for (line, value) in [(9, "x"), (4, "y"), (12, "z")] {
            w.at = Location::Line(line);
            w.add("", b"DP", "not a 32-bit Integer, read as NULL", || {
                Some(value.into())
            });
        }
        w.at = Location::Line(20);
        w.add("INFO/", b"XX", "not in the table schema, ignored", || None);
        assert_eq!(w.kinds().len(), 2);
        let report = ScanReport::default();
        report.merge(Path::new("a.vcf"), &mut w);
        let mut other = Warnings {
            at: Location::Line(2),
            ..Default::default()
        };
        other.add("", b"DP", "not a 32-bit Integer, read as NULL", || {
            Some("w".into())
        });
        report.merge(Path::new("a.vcf"), &mut other);
        report.skipped(Path::new("a.vcf"), Location::Line(30), "bad POS");
        report.skipped(Path::new("a.vcf"), Location::Line(7), "bad REF");
        let lines = report.lines();
        assert_eq!(
            lines,
            vec![
                "a.vcf: DP: not a 32-bit Integer, read as NULL (4 time(s), first at line 2 ('w'))",
                "a.vcf: INFO/XX: not in the table schema, ignored (1 time(s), first at line 20)",
                "a.vcf: skipped 2 unreadable line(s) (vcf.on_error = 'skip'); first: line 7: bad REF",
            ]
        );
    }
}
