//! Where a client-supplied path really points, and whether that is under one of the server's
//! roots. A path is made absolute, `file://` is dropped, symbolic links are resolved as far as
//! the path exists and `..` is applied after them (as the kernel would), so neither `..` nor a
//! link can lead out of a root. The answer does not depend on whether the file exists beyond
//! what resolving links needs, so a refusal says nothing about the file.

use std::path::{Component, Path, PathBuf};

/// Directories clients may read under and write under (canonical, absolute).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRoots {
    read: Vec<PathBuf>,
    write: Vec<PathBuf>,
}

impl FileRoots {
    /// Roots from configured directories (each must exist: a root that does not exist would
    /// be a root that a later `mkdir` or link could put anywhere).
    pub fn new(read: &[PathBuf], write: &[PathBuf]) -> Result<Self, String> {
        let canonical = |dirs: &[PathBuf]| -> Result<Vec<PathBuf>, String> {
            dirs.iter()
                .map(|d| {
                    std::fs::canonicalize(d).map_err(|e| format!("file root {}: {e}", d.display()))
                })
                .collect()
        };
        Ok(FileRoots {
            read: canonical(read)?,
            write: canonical(write)?,
        })
    }

    /// Whether `path` (as a client wrote it) resolves under a read root.
    pub fn may_read(&self, path: &str) -> bool {
        let resolved = resolve(path);
        self.read.iter().any(|root| resolved.starts_with(root))
    }

    /// Whether `path` (as a client wrote it) resolves under a write root.
    pub fn may_write(&self, path: &str) -> bool {
        let resolved = resolve(path);
        self.write.iter().any(|root| resolved.starts_with(root))
    }

    /// The read roots.
    pub fn read_roots(&self) -> &[PathBuf] {
        &self.read
    }

    /// The write roots.
    pub fn write_roots(&self) -> &[PathBuf] {
        &self.write
    }
}

/// The fixed part of a path that may hold glob characters: the directories before the first
/// component with `*`, `?` or `[` (a glob can only match under them).
pub fn glob_base(path: &str) -> &str {
    let Some(first) = path.find(['*', '?', '[']) else {
        return path;
    };
    match path[..first].rfind('/') {
        Some(slash) if slash > 0 => &path[..slash],
        Some(_) => "/",
        None => ".",
    }
}

/// `path` made absolute against the working directory, `file://` dropped, links resolved as
/// far as the path exists, `.` and `..` applied. Glob characters are taken literally: check
/// [`glob_base`] and the files a glob lists instead.
pub fn resolve(path: &str) -> PathBuf {
    let path = path.strip_prefix("file://").unwrap_or(path);
    let path = Path::new(path);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    // the longest prefix that exists is canonicalised (links resolved); the rest cannot hold
    // links, so it is applied as written, `..` popping what came before
    let components: Vec<Component<'_>> = absolute.components().collect();
    for split in (0..=components.len()).rev() {
        let head: PathBuf = components[..split].iter().collect();
        let Ok(mut resolved) = std::fs::canonicalize(if head.as_os_str().is_empty() {
            Path::new("/")
        } else {
            &head
        }) else {
            continue;
        };
        for c in &components[split..] {
            match c {
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(part) => resolved.push(part),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        return resolved;
    }
    lexical(&absolute)
}

/// `.` and `..` applied without looking at the filesystem.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_and_links_cannot_leave_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.vcf"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.vcf"), root.join("sub/file.vcf")).unwrap();
        let roots = FileRoots::new(std::slice::from_ref(&root), &[]).unwrap();
        let r = |p: &Path| p.display().to_string();

        assert!(roots.may_read(&r(&root.join("sub/missing.vcf"))));
        assert!(roots.may_read(&format!("file://{}", r(&root.join("sub")))));
        assert!(!roots.may_read(&r(&root.join("../outside/secret.vcf"))));
        assert!(!roots.may_read(&r(&root.join("sub/../../outside/secret.vcf"))));
        // a missing file under a link that leaves the root is refused like an existing one
        assert!(!roots.may_read(&r(&root.join("link/secret.vcf"))));
        assert!(!roots.may_read(&r(&root.join("link/missing.vcf"))));
        assert!(!roots.may_read(&r(&root.join("sub/file.vcf"))));
        // `..` after a missing directory still pops it
        assert!(roots.may_read(&r(&root.join("nope/../sub/x.vcf"))));
        assert!(!roots.may_read(&r(&root.join("nope/../../outside/x.vcf"))));
        assert!(!roots.may_read("/etc/passwd"));
        assert!(
            !roots.may_write(&r(&root.join("sub/x.vcf"))),
            "no write roots"
        );
        // a root named like another's prefix is not that root
        assert!(!roots.may_read(&format!("{}2/x.vcf", r(&root))));
    }

    #[test]
    fn a_missing_root_is_a_configuration_error() {
        let e = FileRoots::new(&[PathBuf::from("/no/such/root")], &[]).unwrap_err();
        assert!(e.contains("/no/such/root"), "{e}");
    }

    #[test]
    fn glob_bases() {
        assert_eq!(glob_base("/data/*.vcf.gz"), "/data");
        assert_eq!(glob_base("/data/a/chr[12].vcf"), "/data/a");
        assert_eq!(glob_base("/*/x.vcf"), "/");
        assert_eq!(glob_base("*.vcf"), ".");
        assert_eq!(glob_base("/data/x.vcf"), "/data/x.vcf");
    }
}
