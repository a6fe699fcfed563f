//! Files that hold what SDKs sent (the database, the queue, lake files, claim-checked bodies) are personal
//! data: they are created readable by this user only (directories 0700, files 0600), whatever umask the
//! shell had. SQLite gives a database's `-wal`, `-shm` and journal files the mode of the database file, so
//! creating that file first is enough for them.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::Path;

/// `create_dir_all` with mode 0700 for every directory it makes.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Opens `path` for writing, creating it with mode 0600 (an existing file keeps its mode).
pub fn create_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Creates the (empty) database file at `path` as this user's alone before SQLite opens it. An existing
/// file is never opened here: closing any descriptor of a file drops every POSIX lock this process holds
/// on it, so opening and closing a database that a connection of this process already has open would
/// silently release that connection's locks (another process could then checkpoint and delete the WAL
/// under it, and its commits would be lost).
pub fn create_database_file(path: &Path) -> io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Made by another process a moment ago: it is that process's to have made.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes group and other permissions away from an existing directory (a data directory made by an older
/// version, or by hand with the default umask). `Ok(true)` when it changed anything.
pub fn tighten_dir(dir: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
            return Ok(true);
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(false)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_files_are_the_owners_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("a/b/splat.db");
        create_database_file(&db).unwrap();
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
        assert_eq!(mode(&db), 0o600);

        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(tighten_dir(&open).unwrap());
        assert_eq!(mode(&open), 0o700);
        assert!(!tighten_dir(&open).unwrap());
    }
}
