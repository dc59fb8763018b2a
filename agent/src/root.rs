//! `--root DIR`: every path wisp reads or writes is taken under DIR (a mounted image, a fake root
//! in tests). Paths in wisp's code are written as on the target system (`/etc/wisp/wisp.yaml`).

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root(dir.into())
    }

    /// Whether this is the running system itself (no `--root`): only then are disks searched
    /// and volumes mounted.
    pub fn is_host(&self) -> bool {
        self.path("/") == Path::new("/")
    }

    /// The host path of a target path. `..` components cannot climb out of the root.
    pub fn path(&self, target: impl AsRef<Path>) -> PathBuf {
        let mut out = self.0.clone();
        for c in target.as_ref().components() {
            match c {
                Component::Normal(p) => out.push(p),
                Component::ParentDir => {
                    if out != self.0 {
                        out.pop();
                    }
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        out
    }
}

/// `--root DIR` made absolute once, links resolved, at the start: tools run in it (chroot)
/// and the log names paths in it, whatever the current directory.
pub fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    let abs =
        std::fs::canonicalize(dir).map_err(|e| anyhow::anyhow!("--root {}: {e}", dir.display()))?;
    if !abs.is_dir() {
        anyhow::bail!("--root {}: not a directory", dir.display());
    }
    Ok(abs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_root_is_made_absolute_and_a_missing_one_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("r")).unwrap();
        let cwd = std::env::current_dir().unwrap();
        let rel: PathBuf = std::iter::repeat_n("..", cwd.components().count())
            .collect::<PathBuf>()
            .join(d.path().strip_prefix("/").unwrap())
            .join("r");
        assert!(rel.is_relative());
        let abs = absolute(&rel).unwrap();
        assert_eq!(abs, std::fs::canonicalize(d.path().join("r")).unwrap());
        let e = absolute(&d.path().join("missing")).unwrap_err().to_string();
        assert!(e.starts_with("--root ") && e.contains("missing"), "{e}");
    }

    #[test]
    fn paths_stay_under_the_root() {
        let r = Root::new("/tmp/fake");
        assert_eq!(
            r.path("/etc/wisp/wisp.yaml"),
            Path::new("/tmp/fake/etc/wisp/wisp.yaml")
        );
        assert_eq!(
            r.path("/../../etc/passwd"),
            Path::new("/tmp/fake/etc/passwd")
        );
        assert_eq!(
            r.path("/var/db/../db/wisp"),
            Path::new("/tmp/fake/var/db/wisp")
        );
        assert_eq!(Root::new("/").path("/etc/x"), Path::new("/etc/x"));
    }
}
