//! The object store and the layout of the objects a group commit writes.
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
//! checked and understood on its own.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use object_store::{
    local::LocalFileSystem, memory::InMemory, path::Path, ObjectStore, ObjectStoreExt, PutPayload,
};

use crate::error::{Result, StorageError};

const MAGIC: &[u8; 4] = b"SLC1";

/// Where objects live: a local directory (fsynced) or memory (tests).
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    description: String,
}

impl Objects {
    /// Opens `file://DIR` or `memory://`.
    pub fn open(url: &str) -> Result<Self> {
        if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::Objects(format!("creating {dir}: {e}")))?;
            let fs = LocalFileSystem::new_with_prefix(dir)?.with_fsync(true);
            Ok(Objects {
                store: Arc::new(fs),
                description: url.to_string(),
            })
        } else if url == "memory://" || url == "memory:" {
            Ok(Objects {
                store: Arc::new(InMemory::new()),
                description: url.to_string(),
            })
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
            description: description.into(),
        }
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// Writes an object; returns once it is durable.
    pub async fn put(&self, path: &str, body: Bytes) -> Result<()> {
        self.store
            .put(&Path::from(path), PutPayload::from_bytes(body))
            .await?;
        Ok(())
    }

    /// Reads `len` bytes at `start` of an object.
    pub async fn get_range(&self, path: &str, start: u64, len: u64) -> Result<Bytes> {
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

/// The object path for an object id.
pub fn object_path(id: i64) -> String {
    format!("objects/{:016x}.slc", id as u64)
}

/// One partition's bytes in an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FooterEntry {
    pub topic_id: i64,
    pub partition: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub byte_start: u64,
    pub byte_len: u64,
}

/// Builds an object: append each partition's batches, then `finish`.
#[derive(Default)]
pub struct ObjectBuilder {
    body: BytesMut,
    entries: Vec<FooterEntry>,
}

impl ObjectBuilder {
    pub fn with_capacity(bytes: usize) -> Self {
        ObjectBuilder {
            body: BytesMut::with_capacity(bytes + 1024),
            entries: Vec::new(),
        }
    }

    /// Bytes written so far: where the next batch or chunk starts.
    pub fn position(&self) -> usize {
        self.body.len()
    }

    /// Copies one batch into the object and returns its bytes there, so
    /// the caller can stamp offsets without another copy.
    pub fn push_batch(&mut self, batch: &[u8]) -> &mut [u8] {
        let start = self.body.len();
        self.body.put_slice(batch);
        &mut self.body[start..]
    }

    /// Records the batches pushed since `start` as one partition's chunk;
    /// returns its byte range.
    pub fn end_chunk(
        &mut self,
        start: usize,
        topic_id: i64,
        partition: i32,
        base_offset: i64,
        last_offset: i64,
    ) -> (u64, u64) {
        let len = (self.body.len() - start) as u64;
        self.entries.push(FooterEntry {
            topic_id,
            partition,
            base_offset,
            last_offset,
            byte_start: start as u64,
            byte_len: len,
        });
        (start as u64, len)
    }

    /// Appends one partition's consecutive batches as they are; returns the
    /// byte range.
    pub fn push_chunk<'a>(
        &mut self,
        topic_id: i64,
        partition: i32,
        base_offset: i64,
        last_offset: i64,
        batches: impl IntoIterator<Item = &'a [u8]>,
    ) -> (u64, u64) {
        let start = self.position();
        for b in batches {
            self.push_batch(b);
        }
        self.end_chunk(start, topic_id, partition, base_offset, last_offset)
    }

    /// Appends the footer and returns the object's bytes.
    pub fn finish(mut self) -> Bytes {
        let footer_start = self.body.len();
        self.body.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            self.body.put_i64(e.topic_id);
            self.body.put_i32(e.partition);
            self.body.put_i64(e.base_offset);
            self.body.put_i64(e.last_offset);
            self.body.put_u64(e.byte_start);
            self.body.put_u64(e.byte_len);
        }
        let footer_len = (self.body.len() - footer_start) as u32;
        self.body.put_u32(footer_len);
        let crc = crc32c::crc32c(&self.body);
        self.body.put_u32(crc);
        self.body.put_slice(MAGIC);
        self.body.freeze()
    }
}

/// Checks an object's checksum and returns its footer.
pub fn read_footer(object: &[u8]) -> std::result::Result<Vec<FooterEntry>, String> {
    use bytes::Buf;
    if object.len() < 12 || &object[object.len() - 4..] != MAGIC {
        return Err("missing object magic".into());
    }
    let end = object.len() - 8;
    let mut tail = &object[end..];
    let crc = tail.get_u32();
    if crc32c::crc32c(&object[..end]) != crc {
        return Err("object checksum mismatch".into());
    }
    let footer_len =
        u32::from_be_bytes(object[end - 4..end].try_into().map_err(|_| "short")?) as usize;
    let footer_start = (end - 4)
        .checked_sub(footer_len)
        .ok_or("footer length exceeds the object")?;
    let mut f = &object[footer_start..end - 4];
    let count = f.get_u32() as usize;
    if f.remaining() != count * 44 {
        return Err("footer size does not match its entry count".into());
    }
    Ok((0..count)
        .map(|_| FooterEntry {
            topic_id: f.get_i64(),
            partition: f.get_i32(),
            base_offset: f.get_i64(),
            last_offset: f.get_i64(),
            byte_start: f.get_u64(),
            byte_len: f.get_u64(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trips_and_detects_damage() {
        let mut b = ObjectBuilder::default();
        assert_eq!(b.push_chunk(1, 0, 0, 2, [&b"abc"[..], &b"de"[..]]), (0, 5));
        assert_eq!(b.push_chunk(1, 3, 10, 10, [&b"xyz"[..]]), (5, 3));
        let obj = b.finish();
        let f = read_footer(&obj).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].partition, 3);
        assert_eq!(&obj[f[1].byte_start as usize..][..3], b"xyz");
        let mut bad = obj.to_vec();
        bad[1] ^= 1;
        assert!(read_footer(&bad).is_err());
    }

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
}
