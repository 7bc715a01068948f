//! Files that let whoever reads them mint tokens (the SQLite store, a key
//! encryption key, a store export): nobody but their owner may read them.
//! Created with mode 0600 whatever the umask; an existing one that other
//! users can read is refused, with the command that fixes it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Creates the SQLite store file (and any missing directory) readable by
/// the owner only, or refuses an existing one, or its `-wal`, `-shm` and
/// `-journal` companions (which SQLite creates with the main file's mode),
/// that others can read.
///
/// # Errors
/// A message naming the file, its mode and the `chmod` that fixes it.
pub fn prepare_store(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        create_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if !path.exists() {
        match create_private_file(path) {
            Ok(_) => {}
            // Created by another process just now: checked like any existing file.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        }
    }
    for file in std::iter::once(path.to_owned()).chain(companions(path)) {
        refuse_if_shared(&file, "the store file", "it holds the private signing keys")?;
    }
    Ok(())
}

/// Writes `contents` to a new file `path` with mode 0600. An existing file
/// is never overwritten: it may be the only copy of a key.
///
/// # Errors
/// When the file exists or cannot be written.
pub fn write_new(path: &Path, contents: &[u8]) -> Result<(), String> {
    let mut file = create_private_file(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!(
                "{} exists already; choose another path or move it away first",
                path.display()
            )
        }
        _ => format!("cannot create {}: {e}", path.display()),
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads a file that must be private to its owner, refusing it when other
/// users can read or write it. `what` names it in messages ("the key
/// encryption key file"); `why` says what it would give away.
///
/// # Errors
/// When the file cannot be read or is shared.
pub fn read_private(path: &Path, what: &str, why: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    refuse_if_shared(path, what, why)?;
    std::fs::read(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

fn companions(path: &Path) -> impl Iterator<Item = PathBuf> {
    ["-wal", "-shm", "-journal"].into_iter().map(move |suffix| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // The umask may have taken bits away from 0700; never adds any.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Refuses `file` when its mode lets group or others in; a missing file is
/// not refused here (reading it says so).
#[cfg(unix)]
fn refuse_if_shared(file: &Path, what: &str, why: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(file) {
        Ok(meta) => meta.permissions().mode() & 0o777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {what} {}: {e}", file.display())),
    };
    if mode & 0o077 != 0 {
        let shown = file.display();
        return Err(format!(
            "{what} {shown} can be read or written by other users (mode {mode:04o}), and {why}; \
             make it private with `chmod 600 {shown}`, then start again"
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(not(unix))]
fn refuse_if_shared(_file: &Path, _what: &str, _why: &str) -> Result<(), String> {
    Ok(())
}
