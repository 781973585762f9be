//! Reads committed chunks from the object store through the chunk cache,
//! and reads ahead for consumers catching up.
//!
//! A consumer reading old data fetches, processes what it got, and fetches
//! again: while it processes, the broker would sit idle and then make it
//! wait for the next object reads. So after a cold read, the chunks that
//! follow (as many bytes as that read asked for) are loaded into the cache
//! in the background, and the next fetch finds them there.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::cache::ChunkCache;
use crate::catalog::ChunkRow;
use crate::error::{Result, StorageError};
use crate::objects::{object_path, Objects};

/// Read-ahead tasks running at once at most; past that, reads are not
/// read ahead (it is an optimisation, never a queue).
const READ_AHEAD_TASKS: usize = 8;

#[derive(Clone)]
pub struct ChunkReader {
    objects: Objects,
    cache: Arc<ChunkCache>,
    /// Permits for read-ahead tasks.
    ahead: Arc<Semaphore>,
    /// Chunks being read ahead, so two fetches do not read them twice.
    loading: Arc<Mutex<HashSet<(i64, i64)>>>,
}

impl ChunkReader {
    pub fn new(objects: Objects, cache_bytes: usize) -> Self {
        ChunkReader {
            objects,
            cache: Arc::new(ChunkCache::new(cache_bytes)),
            ahead: Arc::new(Semaphore::new(READ_AHEAD_TASKS)),
            loading: Arc::new(Mutex::new(HashSet::new())),
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
        let leading = next.iter().take_while(|c| {
            let take = total == 0 || total + c.byte_len as usize <= bytes;
            total += c.byte_len as usize;
            take
        });
        let Ok(permit) = self.ahead.clone().try_acquire_owned() else {
            return;
        };
        let wanted: Vec<ChunkRow> = {
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            leading
                .filter(|c| {
                    let key = (c.object_id, c.byte_start);
                    !self.cache.contains(key) && loading.insert(key)
                })
                .copied()
                .collect()
        };
        if wanted.is_empty() {
            return;
        }
        let reader = self.clone();
        tokio::spawn(async move {
            for c in &wanted {
                // A failure here is the next read's to report.
                if reader.chunk(c).await.is_err() {
                    break;
                }
                metrics::counter!("sluice_read_ahead_bytes_total").increment(c.byte_len as u64);
            }
            let mut loading = reader.loading.lock().unwrap_or_else(|p| p.into_inner());
            for c in &wanted {
                loading.remove(&(c.object_id, c.byte_start));
            }
            drop(permit);
        });
    }
}
