//! Writing generated files, and `--check`.
//!
//! Everything is generated in memory first. Writing then touches only files
//! whose bytes changed (so file watchers and rust-analyzer do not rebuild for
//! nothing), writes each through a temporary file and a rename (so no file is
//! ever half-written), and removes files it generated earlier that are no
//! longer produced — only files that carry the `@generated` marker, never a
//! user's file.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::generated::GENERATED_MARKER;

/// One difference between what is on disk and what should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The file does not exist yet.
    Create {
        /// Where.
        path: PathBuf,
        /// What it should hold.
        new: String,
    },
    /// The file exists with other bytes.
    Update {
        /// Where.
        path: PathBuf,
        /// What it holds now (lossy UTF-8).
        old: String,
        /// What it should hold.
        new: String,
    },
    /// A generated file that is no longer produced.
    Remove {
        /// Where.
        path: PathBuf,
        /// What it holds now.
        old: String,
    },
}

impl Change {
    /// The file concerned.
    pub fn path(&self) -> &Path {
        match self {
            Self::Create { path, .. } | Self::Update { path, .. } | Self::Remove { path, .. } => {
                path
            }
        }
    }
}

/// Whether `text` starts like a file evcontract generated.
pub fn is_generated(text: &str) -> bool {
    text.lines().take(3).any(|l| l.contains(GENERATED_MARKER))
}

fn scan(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut entries: Vec<_> = entries.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let ty = entry.file_type()?;
        if ty.is_dir() {
            if name != "target"
                && name != "node_modules"
                && !name.to_string_lossy().starts_with('.')
            {
                scan(&path, out)?;
            }
        } else if ty.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// Compares the wanted files with the disk. Stale generated files are looked
/// for under each folder of `scope`.
pub fn plan(wanted: &[(PathBuf, String)], scope: &[PathBuf]) -> io::Result<Vec<Change>> {
    let mut changes = Vec::new();
    for (path, new) in wanted {
        match fs::read(path) {
            Ok(bytes) if bytes == new.as_bytes() => {}
            Ok(bytes) => changes.push(Change::Update {
                path: path.clone(),
                old: String::from_utf8_lossy(&bytes).into_owned(),
                new: new.clone(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => changes.push(Change::Create {
                path: path.clone(),
                new: new.clone(),
            }),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }
    let mut existing = Vec::new();
    for dir in scope {
        scan(dir, &mut existing)?;
    }
    existing.sort();
    existing.dedup();
    for path in existing {
        if wanted.iter().any(|(p, _)| *p == path) {
            continue;
        }
        // Only text files carrying our marker are ours to remove.
        if let Ok(text) = fs::read_to_string(&path)
            && is_generated(&text)
        {
            changes.push(Change::Remove { path, old: text });
        }
    }
    Ok(changes)
}

/// Carries out the changes: all new contents go to temporary files first,
/// then are renamed into place, then stale files are removed (with folders
/// left empty by that).
pub fn apply(changes: &[Change]) -> io::Result<()> {
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let stage = |staged: &mut Vec<(PathBuf, PathBuf)>| -> io::Result<()> {
        for change in changes {
            let (path, new) = match change {
                Change::Create { path, new } | Change::Update { path, new, .. } => (path, new),
                Change::Remove { .. } => continue,
            };
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", parent.display())))?;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = path.with_file_name(format!(".{name}.evcontract-tmp"));
            fs::write(&tmp, new)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", tmp.display())))?;
            staged.push((tmp, path.clone()));
        }
        Ok(())
    };
    if let Err(e) = stage(&mut staged) {
        for (tmp, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
        return Err(e);
    }
    for (tmp, path) in &staged {
        fs::rename(tmp, path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    }
    for change in changes {
        if let Change::Remove { path, .. } = change {
            fs::remove_file(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let mut dir = path.parent();
            while let Some(d) = dir {
                // Stops at the first folder that is not empty (or not ours to remove).
                if fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
    }
    Ok(())
}

/// A report of what is stale, with a unified diff per file.
pub fn report(changes: &[Change]) -> String {
    let mut out = String::new();
    for change in changes {
        let (what, old, new) = match change {
            Change::Create { new, .. } => ("missing", "", new.as_str()),
            Change::Update { old, new, .. } => ("stale", old.as_str(), new.as_str()),
            Change::Remove { old, .. } => ("extra", old.as_str(), ""),
        };
        let path = change.path().display().to_string();
        let _ = writeln!(out, "{what}: {path}");
        let diff = similar::TextDiff::from_lines(old, new);
        let _ = write!(
            out,
            "{}",
            diff.unified_diff()
                .context_radius(3)
                .header(&format!("a/{path}"), &format!("b/{path}"))
        );
    }
    out
}
