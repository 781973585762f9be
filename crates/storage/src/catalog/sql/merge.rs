//! The catalog transaction of a merge (see `crate::merge`).
//!
//! The merge copied the replaced chunks while commits, retention and other
//! merges went on, so the transaction checks that every replaced row is
//! still there, exactly as copied, by deleting them all and counting: a
//! shortfall means some of them were removed or replaced meanwhile, and
//! the whole merge is rolled back (its object, left prepared, is collected
//! when its registration expires). Offsets never move, so no partition's
//! epoch or next offset is checked.

use sqlx::{AnyPool, AssertSqlSafe};

use super::{values_placeholders, Dialect, CHUNK_COLUMNS};
use crate::catalog::{ChunkRow, Merge};
use crate::error::Result;

/// Rows per multi-row statement.
const ROWS_PER_STATEMENT: usize = 64;

/// Runs a merge's transaction on the writer pool; false if nothing changed.
pub(super) async fn run(writer: &AnyPool, dialect: Dialect, m: &Merge) -> Result<bool> {
    let mut tx = writer.begin_with(dialect.begin_write()).await?;
    if dialect == Dialect::Postgres {
        // Retention and commits lock a partition's row before they touch
        // its chunks; so does a merge, in (topic, partition) order, so
        // that none of them can deadlock with another.
        let mut partitions: Vec<(i64, i32)> = m
            .replaced
            .iter()
            .map(|c| (c.topic_id, c.partition))
            .collect();
        partitions.dedup();
        for group in partitions.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::query(AssertSqlSafe(format!(
                "SELECT 1 FROM partitions WHERE (topic_id, partition_id) IN (VALUES {}) \
                 ORDER BY topic_id, partition_id FOR UPDATE",
                values_placeholders(group.len(), 2)
            )));
            for (topic_id, partition) in group {
                q = q.bind(*topic_id).bind(*partition as i64);
            }
            q.execute(&mut *tx).await?;
        }
    }
    for group in m.replaced.chunks(ROWS_PER_STATEMENT) {
        // `object_id IN (...)` lets SQLite find the rows by chunks_by_object;
        // with the row-value test alone it scans the whole table.
        let mut ids: Vec<i64> = group.iter().map(|c| c.object_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let rows = values_placeholders(group.len(), 6);
        let id_list = (1..=ids.len())
            .map(|i| format!("${}", group.len() * 6 + i))
            .collect::<Vec<_>>()
            .join(", ");
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM chunks WHERE object_id IN ({id_list}) AND \
             (topic_id, partition_id, base_offset, last_offset, object_id, byte_start) IN (VALUES {rows})"
        )));
        for c in group {
            q = q
                .bind(c.topic_id)
                .bind(c.partition as i64)
                .bind(c.base_offset)
                .bind(c.last_offset)
                .bind(c.object_id)
                .bind(c.byte_start);
        }
        for id in ids {
            q = q.bind(id);
        }
        if q.execute(&mut *tx).await?.rows_affected() != group.len() as u64 {
            tx.rollback().await?;
            return Ok(false);
        }
    }
    for group in m.merged.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO chunks ({CHUNK_COLUMNS}) VALUES {}",
            values_placeholders(group.len(), 9)
        )));
        for c in group {
            q = bind_chunk(q, c);
        }
        q.execute(&mut *tx).await?;
    }
    let r = sqlx::query(
        "UPDATE objects SET state = 'committed', size_bytes = $1 WHERE id = $2 AND state = 'prepared'",
    )
    .bind(m.object_size)
    .bind(m.object_id)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("INSERT INTO merged_objects (object_id) VALUES ($1)")
        .bind(m.object_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

fn bind_chunk<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    c: &ChunkRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(c.topic_id)
        .bind(c.partition as i64)
        .bind(c.base_offset)
        .bind(c.last_offset)
        .bind(c.max_timestamp)
        .bind(c.leader_epoch as i64)
        .bind(c.object_id)
        .bind(c.byte_start)
        .bind(c.byte_len)
}
