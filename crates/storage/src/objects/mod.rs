//! The object store, and the layout of the objects a group commit writes.
//!
//! An object holds the new batches of many partitions, grouped by
//! partition, then a footer that indexes them, the footer's length, a
//! CRC32C of everything before it and a magic word:
//!
//! ```text
//! [batches of partition A][batches of partition B]...
//! [footer: count, then per chunk topic_id, partition, base, last, start, len]
//! [footer_len: u32][crc32c: u32][magic "SLC1"]
//! ```
//!
//! The catalog's index is authoritative; the footer lets an object be
//! checked and understood on its own. `layout.rs` builds and reads objects;
//! `local.rs` writes them into a local directory.

mod layout;
mod local;

use std::sync::Arc;

use bytes::Bytes;
use object_store::{
    local::LocalFileSystem, memory::InMemory, path::Path, ObjectStore, ObjectStoreExt, PutPayload,
};

pub use layout::{read_footer, FooterEntry, ObjectBuilder};

use crate::error::{Result, StorageError};

/// Where objects live: a local directory (fsynced) or memory (tests).
#[derive(Clone)]
pub struct Objects {
    /// Reads and deletes, and writes to stores other than a local directory.
    store: Arc<dyn ObjectStore>,
    /// For `file://` stores, the store itself: objects are written in place
    /// (see `local.rs`) at the paths it maps them to.
    local: Option<Arc<LocalFileSystem>>,
    description: String,
}

impl Objects {
    /// Opens `file://DIR` or `memory://`.
    pub fn open(url: &str) -> Result<Self> {
        if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::Objects(format!("creating {dir}: {e}")))?;
            let fs = Arc::new(LocalFileSystem::new_with_prefix(dir)?.with_fsync(true));
            Ok(Objects {
                store: fs.clone(),
                local: Some(fs),
                description: url.to_string(),
            })
        } else if url == "memory://" || url == "memory:" {
            Ok(Objects::from_store(Arc::new(InMemory::new()), url))
        } else {
            Err(StorageError::Objects(format!(
                "unsupported object store URL `{url}`: use file://DIR or memory://"
            )))
        }
    }

    /// Wraps a store built in code (one with options a URL cannot
    /// express, or a test's instrumented store).
    pub fn from_store(store: Arc<dyn ObjectStore>, description: impl Into<String>) -> Self {
        Objects {
            store,
            local: None,
            description: description.into(),
        }
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// Gets a registered object's place ready before it is written, so that
    /// the write costs less: in a local directory, its file is created now.
    /// A no-op for other stores. Objects need not be prepared: `put`
    /// works either way.
    pub async fn prepare(&self, path: &str) -> Result<()> {
        match &self.local {
            Some(fs) => on_file(fs, path, "creating", local::create_empty).await,
            None => Ok(()),
        }
    }

    /// Writes an object; returns once it is durable. The object's path must
    /// be registered in the catalog and not yet committed: nothing may read
    /// it while it is written.
    pub async fn put(&self, path: &str, body: Bytes) -> Result<()> {
        self.write(path, body, false).await
    }

    /// `put` for an object whose `prepare` returned Ok: cheaper, since
    /// what the preparing made durable need not be made durable again.
    pub async fn put_prepared(&self, path: &str, body: Bytes) -> Result<()> {
        self.write(path, body, true).await
    }

    async fn write(&self, path: &str, body: Bytes, prepared: bool) -> Result<()> {
        if let Some(fs) = &self.local {
            return on_file(fs, path, "writing", move |f| {
                local::write(f, &body, prepared)
            })
            .await;
        }
        self.store
            .put(&Path::from(path), PutPayload::from_bytes(body))
            .await?;
        Ok(())
    }

    /// Reads `len` bytes at `start` of an object; fewer if it ends first.
    pub async fn get_range(&self, path: &str, start: u64, len: u64) -> Result<Bytes> {
        if let Some(fs) = &self.local {
            let read = move |f: &std::path::Path| local::read_range(f, start, len);
            return on_file(fs, path, "reading", read).await.map(Bytes::from);
        }
        Ok(self
            .store
            .get_range(&Path::from(path), start..start + len)
            .await?)
    }

    /// Reads a whole object.
    pub async fn get(&self, path: &str) -> Result<Bytes> {
        Ok(self.store.get(&Path::from(path)).await?.bytes().await?)
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, path: &str) -> Result<()> {
        match self.store.delete(&Path::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs `io` on the blocking pool on the file a local store keeps `path`
/// in; an error says what was being done (`verb`) to which file.
async fn on_file<T: Send + 'static>(
    fs: &LocalFileSystem,
    path: &str,
    verb: &'static str,
    io: impl FnOnce(&std::path::Path) -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    let file = fs.path_to_filesystem(&Path::from(path))?;
    let done = tokio::task::spawn_blocking(move || io(&file).map_err(|e| (file, e))).await;
    match done {
        Ok(Ok(v)) => Ok(v),
        Ok(Err((file, e))) => Err(StorageError::Objects(format!(
            "{verb} {}: {e}",
            file.display()
        ))),
        Err(e) => Err(StorageError::Objects(format!("{verb} {path}: {e}"))),
    }
}

/// The object path for an object id.
pub fn object_path(id: i64) -> String {
    format!("objects/{:016x}.slc", id as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_round_trip_on_disk_and_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        for url in [
            format!("file://{}", dir.path().display()),
            "memory://".to_string(),
        ] {
            let o = Objects::open(&url).unwrap();
            o.put("objects/a", Bytes::from_static(b"hello world"))
                .await
                .unwrap();
            assert_eq!(&o.get_range("objects/a", 6, 5).await.unwrap()[..], b"world");
            assert_eq!(&o.get("objects/a").await.unwrap()[..], b"hello world");
            o.delete("objects/a").await.unwrap();
            o.delete("objects/a").await.unwrap();
            assert!(o.get("objects/a").await.is_err());
        }
    }

    #[tokio::test]
    async fn prepared_and_rewritten_local_objects_hold_exactly_their_last_body() {
        let dir = tempfile::tempdir().unwrap();
        let o = Objects::open(&format!("file://{}", dir.path().display())).unwrap();
        let file = dir.path().join("objects/b");
        // The first write creates the directory; preparing does not.
        assert!(o.prepare("objects/b").await.is_err());
        o.put("objects/a", Bytes::from_static(b"first"))
            .await
            .unwrap();
        o.prepare("objects/b").await.unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 0);
        o.put_prepared("objects/b", Bytes::from_static(b"a long first attempt"))
            .await
            .unwrap();
        // A write that failed may be done again: nothing of it stays.
        o.put("objects/b", Bytes::from_static(b"short"))
            .await
            .unwrap();
        assert_eq!(&o.get("objects/b").await.unwrap()[..], b"short");
        // A range past the end comes back short (the chunk reader calls
        // that a corrupt object); a missing object is an error.
        assert_eq!(&o.get_range("objects/b", 3, 10).await.unwrap()[..], b"rt");
        assert!(o.get_range("objects/none", 0, 1).await.is_err());
        // Memory stores have nothing to prepare.
        let m = Objects::open("memory://").unwrap();
        m.prepare("objects/b").await.unwrap();
        assert!(m.get("objects/b").await.is_err());
    }
}
