//! Object writes into a local directory, in place.
//!
//! object_store's local store publishes a write by staging a new file,
//! syncing it, renaming it into place and syncing the directory, so that no
//! reader ever sees half an object. Sluice needs no atomic publish: nothing
//! reads an object before the catalog commit that names it, that commit
//! comes after the write is durable, and a write cut short by a crash
//! leaves a prepared object that the collector deletes. So an object's
//! file is created empty, with its directory entry made durable, when the
//! object is registered, off the commit path ([`create_empty`]); a flush
//! then only opens it, writes it and syncs its data ([`write`]). That takes
//! a new inode, a rename and a directory sync off every flush.
//!
//! Reads ([`read_range`]) fill a buffer straight from the file, where
//! object_store zeroes the whole buffer first.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Creates an object's file, empty, and makes its directory entry durable.
/// An existing file is left as it is. The directory must exist: preparing
/// is only a head start, and leaves creating directories to the writes.
pub(super) fn create_empty(file: &Path) -> io::Result<()> {
    let dir = parent(file)?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(file)?;
    sync_dir(dir)
}

/// Writes an object's whole body into its file and returns once it is
/// durable. The file is truncated first, so that whatever it held (a
/// prepared file is empty) is replaced whole. The directory is synced too
/// unless `entry_durable` says [`create_empty`] made this file's entry
/// durable; a file that does not exist yet is created.
pub(super) fn write(file: &Path, body: &[u8], entry_durable: bool) -> io::Result<()> {
    let existing = OpenOptions::new().write(true).truncate(true).open(file);
    let (mut f, created) = match existing {
        Ok(f) => (f, false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dirs(parent(file)?)?;
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(file)?;
            (f, true)
        }
        Err(e) => return Err(e),
    };
    f.write_all(body)?;
    // The size is part of what fdatasync makes durable; timestamps are not.
    f.sync_data()?;
    if created || !entry_durable {
        sync_dir(parent(file)?)?;
    }
    Ok(())
}

/// Reads `len` bytes at `start` of a file; fewer if the file ends first.
pub(super) fn read_range(file: &Path, start: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut f = File::open(file)?;
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(len as usize);
    // `read_to_end` reads into the spare capacity without zeroing it.
    f.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Creates `dir` and any missing parents, durably: each new directory is
/// synced, and so is the existing one it was created in, so that no
/// directory entry on the way to a durable object can be lost.
fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut existing = dir;
    while !existing.is_dir() {
        missing.push(existing);
        existing = parent(existing)?;
    }
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    for d in missing {
        sync_dir(d)?;
    }
    sync_dir(existing)
}

fn parent(file: &Path) -> io::Result<&Path> {
    file.parent()
        .ok_or_else(|| io::Error::other(format!("{} has no directory", file.display())))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
