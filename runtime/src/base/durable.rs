//! Durable file writes: replacing a small file atomically (a temporary
//! file, then a rename) and syncing a folder, for the JSONL files and the
//! audit chain's head anchor.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `text` to `path` atomically (a temporary file beside it, then a
/// rename); with `sync`, durably too: the file and its folder are synced.
#[cfg_attr(not(feature = "audit"), allow(dead_code))]
pub(crate) fn replace_file(path: &Path, text: &str, sync: bool) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    if sync {
        f.sync_all()?;
    }
    drop(f);
    std::fs::rename(&tmp, path)?;
    if sync {
        sync_folder(path)?;
    }
    Ok(())
}

/// Syncs the folder holding `path`, so a rename or a new file in it
/// survives a power loss. Where the platform cannot sync a folder, the
/// files themselves still are.
pub(crate) fn sync_folder(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::InvalidInput) => Ok(()),
        other => other,
    }
}
