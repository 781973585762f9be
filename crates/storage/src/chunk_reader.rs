//! Reads committed chunks from the object store through the chunk cache,
//! and reads ahead for consumers catching up.
//!
//! A consumer reading old data fetches, processes what it got, and fetches
//! again: while it processes, the broker would sit idle and then make it
//! wait for the next object reads. So after a cold read, the chunks that
//! follow (as many bytes as that read asked for) are loaded into the cache
//! in the background, and the next fetch finds them there.

use std::sync::Arc;

use bytes::Bytes;

use crate::cache::ChunkCache;
use crate::catalog::ChunkRow;
use crate::error::{Result, StorageError};
use crate::objects::{object_path, Objects};

#[derive(Clone)]
pub struct ChunkReader {
    objects: Objects,
    cache: Arc<ChunkCache>,
}

impl ChunkReader {
    pub fn new(objects: Objects, cache_bytes: usize) -> Self {
        ChunkReader {
            objects,
            cache: Arc::new(ChunkCache::new(cache_bytes)),
        }
    }

    /// A chunk's bytes, from the cache or the object store.
    pub async fn chunk(&self, chunk: &ChunkRow) -> Result<Bytes> {
        let key = (chunk.object_id, chunk.byte_start);
        if let Some(b) = self.cache.get(key) {
            return Ok(b);
        }
        let b = self
            .objects
            .get_range(
                &object_path(chunk.object_id),
                chunk.byte_start as u64,
                chunk.byte_len as u64,
            )
            .await?;
        if b.len() as i64 != chunk.byte_len {
            return Err(StorageError::CorruptObject(
                object_path(chunk.object_id),
                format!(
                    "expected {} bytes at {}, got {}",
                    chunk.byte_len,
                    chunk.byte_start,
                    b.len()
                ),
            ));
        }
        self.cache.insert(key, b.clone());
        Ok(b)
    }

    /// Loads the leading chunks of `next` that are not cached, up to
    /// `bytes` (at least one), in the background.
    pub fn read_ahead(&self, next: &[ChunkRow], bytes: usize) {
        let mut total = 0;
        let wanted: Vec<ChunkRow> = next
            .iter()
            .take_while(|c| {
                let take = total == 0 || total + c.byte_len as usize <= bytes;
                total += c.byte_len as usize;
                take
            })
            .filter(|c| !self.cache.contains((c.object_id, c.byte_start)))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return;
        }
        let reader = self.clone();
        tokio::spawn(async move {
            for c in wanted {
                // A failure here is the next read's to report.
                if reader.chunk(&c).await.is_err() {
                    break;
                }
                metrics::counter!("sluice_read_ahead_bytes_total").increment(c.byte_len as u64);
            }
        });
    }
}
