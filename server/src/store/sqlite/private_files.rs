//! The store file holds the private signing keys: nobody but its owner may
//! read it, or its `-wal` and `-shm` companions (which SQLite creates with
//! the main file's mode).

use std::path::{Path, PathBuf};

use super::{StoreError, unavailable};

/// Creates the file (and any missing directory) readable by the owner
/// only, whatever the umask, or refuses an existing one that others can
/// read, saying how to fix it.
pub fn prepare(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        create_private_dir(dir)?;
    }
    if !path.exists() {
        create_private_file(path)?;
    }
    for file in std::iter::once(path.to_owned()).chain(companions(path)) {
        refuse_if_shared(&file)?;
    }
    Ok(())
}

fn companions(path: &Path) -> impl Iterator<Item = PathBuf> {
    ["-wal", "-shm", "-journal"].into_iter().map(move |suffix| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(unavailable)?;
    // The umask may have taken bits away from 0700; never adds any.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(unavailable)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match file {
        Ok(file) => file
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(unavailable),
        // Created by another process just now: checked like any existing file.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(unavailable(e)),
    }
}

#[cfg(unix)]
fn refuse_if_shared(file: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(file) {
        Ok(meta) => meta.permissions().mode() & 0o777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unavailable(e)),
    };
    if mode & 0o077 != 0 {
        let shown = file.display();
        return Err(StoreError::Insecure(format!(
            "the store file {shown} can be read or written by other users (mode {mode:04o}), and it holds the \
             private signing keys; make it private with `chmod 600 {shown}` (and the same for its -wal and -shm \
             files), then start again"
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(unavailable)
}

#[cfg(not(unix))]
fn create_private_file(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(not(unix))]
fn refuse_if_shared(_file: &Path) -> Result<(), StoreError> {
    Ok(())
}
