//! Durable storage for Sluice: record bytes in an object store, everything
//! else in a SQL catalog.
//!
//! - [`catalog`]: the `Catalog` trait and its SQL implementation that runs on
//!   SQLite (embedded) and PostgreSQL (clusters) from one code path.
//! - [`objects`]: the object store (local directory or memory) and the format
//!   of the objects a group commit writes.
//! - [`partition`]: a partition's in-memory state on its leader: high
//!   watermark, log start and the tail of recent batches.
//! - [`producer`]: idempotent producers' state per partition: duplicates,
//!   sequence gaps and fenced epochs.
//! - [`commit`]: the group commit that sequences offsets, writes one object
//!   for many partitions and commits it to the catalog under the leader epoch.
//! - [`merge`]: copies the chunks of many small objects into one larger
//!   object and swaps their index rows.
//! - [`compaction`]: keeps the latest record of each key in the logs of
//!   compacted topics.
//! - [`storage`]: the service the broker calls: topics, append, read, list
//!   offsets, retention, compaction, merging and garbage collection.

pub mod cache;
pub mod catalog;
pub mod chunk_reader;
pub mod commit;
pub mod compaction;
pub mod error;
pub mod leader_epoch;
pub mod merge;
pub mod objects;
pub mod partition;
pub mod producer;
pub mod storage;
pub mod topic_config;

pub use error::StorageError;
pub use storage::{Storage, StorageOptions};

/// Milliseconds since the Unix epoch by the wall clock. Used for record
/// timestamps and expiry times, never for safety decisions.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
