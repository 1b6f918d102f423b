//! What a file was when it was read (size and modification time), so that whoever opens the
//! same path later — a cluster's scheduler or executor, the Lance dataset cache — can tell
//! whether it still holds the same file, and fail or read it again rather than answer from
//! another one.

use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::VcfError;

/// A file's size and modification time (nanoseconds since the Unix epoch; 0 where the
/// filesystem keeps none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Bytes.
    pub size: u64,
    /// Last modification, in nanoseconds since the Unix epoch.
    pub modified_ns: i64,
}

impl FileStamp {
    /// The stamp of the file at `path` now.
    pub fn of(path: &Path) -> Result<Self, VcfError> {
        let meta = std::fs::metadata(path).map_err(|e| VcfError::io(path, e))?;
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Ok(FileStamp {
            size: meta.len(),
            modified_ns,
        })
    }
}

/// Checks that `found` (the stamps of `files` here) are `expected` (where the query was
/// planned); the error names the first file that differs.
pub fn check_unchanged(
    files: &[impl AsRef<Path>],
    expected: &[FileStamp],
    found: &[FileStamp],
) -> Result<(), VcfError> {
    for ((file, want), got) in files.iter().zip(expected).zip(found) {
        if want != got {
            return Err(VcfError::Invalid(format!(
                "{}: the file changed after the query was planned ({} bytes then, {} now); run the query again",
                file.as_ref().display(),
                want.size,
                got.size
            )));
        }
    }
    if expected.len() != found.len() {
        return Err(VcfError::Invalid(format!(
            "the table had {} files where the query was planned and has {} here",
            expected.len(),
            found.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_file_is_told_apart_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.vcf");
        std::fs::write(&path, "one").unwrap();
        let before = FileStamp::of(&path).unwrap();
        assert_eq!(FileStamp::of(&path).unwrap(), before);
        assert!(check_unchanged(&[&path], &[before], &[before]).is_ok());
        std::fs::write(&path, "other").unwrap();
        let after = FileStamp::of(&path).unwrap();
        let e = check_unchanged(&[&path], &[before], &[after]).unwrap_err();
        assert!(e.to_string().contains("a.vcf: the file changed"), "{e}");
        // same size, another time
        let touched = FileStamp {
            modified_ns: before.modified_ns + 1,
            ..before
        };
        assert!(check_unchanged(&[&path], &[before], &[touched]).is_err());
        assert!(check_unchanged(&[&path], &[before], &[]).is_err());
    }
}
