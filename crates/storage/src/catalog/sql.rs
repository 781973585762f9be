//! The catalog on SQL: one implementation for SQLite and PostgreSQL.
//!
//! Both run the same statements through sqlx's `Any` driver; the
//! [`Dialect`] chooses how a write transaction begins, how the connections
//! are tuned, and, for the group commit (`commit.rs`), whether its
//! statements go in one query (SQLite) or lock rows in order first
//! (PostgreSQL). SQLite runs in WAL mode with `synchronous=FULL`
//! (NORMAL can lose an acknowledged commit on power loss) behind a single
//! writer connection, with a separate pool of readers.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Executor, Row};

use super::*;
use crate::error::StorageError;

mod commit;
mod merge;

/// Which database the catalog runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn begin_write(self) -> &'static str {
        match self {
            // Take the write lock up front: a deferred transaction that
            // upgrades from read to write can fail with SQLITE_BUSY.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS topics (
        id BIGINT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        uuid TEXT NOT NULL,
        partitions BIGINT NOT NULL,
        configs TEXT NOT NULL,
        created_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS partitions (
        topic_id BIGINT NOT NULL,
        partition_id BIGINT NOT NULL,
        leader TEXT NOT NULL,
        leader_epoch BIGINT NOT NULL,
        log_start BIGINT NOT NULL,
        next_offset BIGINT NOT NULL,
        PRIMARY KEY (topic_id, partition_id))",
    "CREATE TABLE IF NOT EXISTS objects (
        id BIGINT PRIMARY KEY,
        path TEXT NOT NULL,
        state TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        owner TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS objects_by_state ON objects (state, expires_ms)",
    // The merge's search for small committed objects reads only those, not
    // every object a busy broker wrote (see `small_objects`).
    "CREATE INDEX IF NOT EXISTS objects_by_size ON objects (state, size_bytes)",
    // Objects a merge wrote, which are not merged again (a table of its
    // own, so that the objects table keeps the shape older versions know).
    "CREATE TABLE IF NOT EXISTS merged_objects (
        object_id BIGINT PRIMARY KEY)",
    // Where compaction last cleaned each compacted partition's log up to,
    // so that a restart does not treat the whole log as new.
    "CREATE TABLE IF NOT EXISTS cleaned_offsets (
        topic_id BIGINT NOT NULL,
        partition_id BIGINT NOT NULL,
        cleaned_to BIGINT NOT NULL,
        PRIMARY KEY (topic_id, partition_id))",
    // Where each leader epoch of a partition began: one row per epoch a
    // partition was led with, written with the partition (epoch 1) and by
    // each takeover, as Kafka's leader epoch cache (OffsetForLeaderEpoch).
    // Catalogs from before it know only the epochs since; an epoch older
    // than them ends, as far as it tells, where the first one it knows
    // began: later than it did, which no consumer takes for truncation.
    "CREATE TABLE IF NOT EXISTS leader_epochs (
        topic_id BIGINT NOT NULL,
        partition_id BIGINT NOT NULL,
        leader_epoch BIGINT NOT NULL,
        start_offset BIGINT NOT NULL,
        PRIMARY KEY (topic_id, partition_id, leader_epoch))",
    "CREATE TABLE IF NOT EXISTS chunks (
        topic_id BIGINT NOT NULL,
        partition_id BIGINT NOT NULL,
        base_offset BIGINT NOT NULL,
        last_offset BIGINT NOT NULL,
        max_timestamp BIGINT NOT NULL,
        leader_epoch BIGINT NOT NULL,
        object_id BIGINT NOT NULL,
        byte_start BIGINT NOT NULL,
        byte_len BIGINT NOT NULL,
        PRIMARY KEY (topic_id, partition_id, base_offset))",
    // A partition's chunks never overlap, so the primary key orders them
    // by last offset too: an index on it would only add about a third to
    // the pages each commit writes. (Catalogs created before had one.)
    "DROP INDEX IF EXISTS chunks_by_last",
    "CREATE INDEX IF NOT EXISTS chunks_by_object ON chunks (object_id)",
    // Idempotent producers' state per partition; `batches` is a JSON array
    // of [first_seq, last_seq, base_offset, last_offset], oldest first.
    "CREATE TABLE IF NOT EXISTS producer_states (
        topic_id BIGINT NOT NULL,
        partition_id BIGINT NOT NULL,
        producer_id BIGINT NOT NULL,
        producer_epoch BIGINT NOT NULL,
        batches TEXT NOT NULL,
        last_timestamp BIGINT NOT NULL,
        PRIMARY KEY (topic_id, partition_id, producer_id))",
    // Every producer id handed out, with its latest epoch (KIP-360 bumps).
    "CREATE TABLE IF NOT EXISTS producer_ids (
        producer_id BIGINT PRIMARY KEY,
        producer_epoch BIGINT NOT NULL,
        created_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL)",
    "INSERT INTO counters (name, value) VALUES ('next_producer_id', 0) ON CONFLICT (name) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS consumer_groups (
        group_id TEXT PRIMARY KEY,
        protocol_type TEXT NOT NULL,
        created_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS group_states (
        group_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS group_offsets (
        group_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        partition_id BIGINT NOT NULL,
        committed_offset BIGINT NOT NULL,
        leader_epoch BIGINT NOT NULL,
        metadata TEXT,
        commit_ms BIGINT NOT NULL,
        PRIMARY KEY (group_id, topic, partition_id))",
    "CREATE TABLE IF NOT EXISTS tenants (
        name TEXT PRIMARY KEY,
        plan TEXT NOT NULL,
        created_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS credentials (
        username TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS api_tokens (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS acls (
        resource_type BIGINT NOT NULL,
        resource_name TEXT NOT NULL,
        pattern_type BIGINT NOT NULL,
        principal TEXT NOT NULL,
        host TEXT NOT NULL,
        operation BIGINT NOT NULL,
        permission BIGINT NOT NULL,
        PRIMARY KEY (resource_type, resource_name, pattern_type, principal, host, operation, permission))",
];

/// `($1, $2, ...), ($k+1, ...)`: placeholders for `rows` rows of `columns`
/// values, for multi-row statements.
fn values_placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::new();
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql
}

const CHUNK_COLUMNS: &str =
    "topic_id, partition_id, base_offset, last_offset, max_timestamp, leader_epoch, object_id, byte_start, byte_len";

/// The catalog on a SQL database.
pub struct SqlCatalog {
    dialect: Dialect,
    /// Serialises writes on SQLite (one connection); a normal pool on PostgreSQL.
    writer: AnyPool,
    /// Reads: index lookups on the fetch path must not queue behind commits.
    reader: AnyPool,
}

impl SqlCatalog {
    /// Connects to `sqlite://PATH` or `postgres://…` and creates the schema.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StorageError::Catalog(format!(
                "unsupported catalog URL `{url}`: use sqlite://PATH or postgres://…"
            )));
        };
        let url = match dialect {
            Dialect::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if dialect == Dialect::Sqlite {
                            conn.execute("PRAGMA journal_mode=WAL").await?;
                            conn.execute("PRAGMA synchronous=FULL").await?;
                            conn.execute("PRAGMA busy_timeout=10000").await?;
                        }
                        Ok(())
                    })
                })
        };
        let (writer, reader) = match dialect {
            Dialect::Sqlite => {
                let writer = pool(1).connect_with(options.clone()).await?;
                let reader = pool(4).connect_with(options).await?;
                (writer, reader)
            }
            Dialect::Postgres => {
                let p = pool(10).connect_with(options).await?;
                (p.clone(), p)
            }
        };
        let catalog = SqlCatalog {
            dialect,
            writer,
            reader,
        };
        catalog.migrate().await?;
        Ok(catalog)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pools, waiting for checked-out connections.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

fn topic_from_row(r: &AnyRow) -> Result<TopicRow> {
    let uuid_hex: String = r.try_get("uuid")?;
    let mut uuid = [0u8; 16];
    for (i, b) in uuid.iter_mut().enumerate() {
        *b = u8::from_str_radix(uuid_hex.get(i * 2..i * 2 + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    let configs: String = r.try_get("configs")?;
    Ok(TopicRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        uuid,
        partitions: r.try_get::<i64, _>("partitions")? as i32,
        configs: serde_json::from_str(&configs)
            .map_err(|e| StorageError::Catalog(format!("topic configs: {e}")))?,
        created_ms: r.try_get("created_ms")?,
    })
}

fn partition_from_row(r: &AnyRow) -> Result<PartitionRow> {
    Ok(PartitionRow {
        topic_id: r.try_get("topic_id")?,
        partition: r.try_get::<i64, _>("partition_id")? as i32,
        leader_epoch: r.try_get::<i64, _>("leader_epoch")? as i32,
        log_start: r.try_get("log_start")?,
        next_offset: r.try_get("next_offset")?,
    })
}

fn chunk_from_row(r: &AnyRow) -> Result<ChunkRow> {
    Ok(ChunkRow {
        topic_id: r.try_get("topic_id")?,
        partition: r.try_get::<i64, _>("partition_id")? as i32,
        base_offset: r.try_get("base_offset")?,
        last_offset: r.try_get("last_offset")?,
        max_timestamp: r.try_get("max_timestamp")?,
        leader_epoch: r.try_get::<i64, _>("leader_epoch")? as i32,
        object_id: r.try_get("object_id")?,
        byte_start: r.try_get("byte_start")?,
        byte_len: r.try_get("byte_len")?,
    })
}

fn producer_state_from_row(r: &AnyRow) -> Result<ProducerStateRow> {
    let batches: String = r.try_get("batches")?;
    let batches: Vec<[i64; 4]> = serde_json::from_str(&batches)
        .map_err(|e| StorageError::Catalog(format!("producer state batches: {e}")))?;
    Ok(ProducerStateRow {
        topic_id: r.try_get("topic_id")?,
        partition: r.try_get::<i64, _>("partition_id")? as i32,
        producer_id: r.try_get("producer_id")?,
        producer_epoch: r.try_get::<i64, _>("producer_epoch")? as i16,
        batches: batches
            .into_iter()
            .map(
                |[first_seq, last_seq, base_offset, last_offset]| ProducerBatch {
                    first_seq: first_seq as i32,
                    last_seq: last_seq as i32,
                    base_offset,
                    last_offset,
                },
            )
            .collect(),
        last_timestamp: r.try_get("last_timestamp")?,
    })
}

fn producer_batches_json(batches: &[ProducerBatch]) -> String {
    let rows: Vec<[i64; 4]> = batches
        .iter()
        .map(|b| {
            [
                b.first_seq as i64,
                b.last_seq as i64,
                b.base_offset,
                b.last_offset,
            ]
        })
        .collect();
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
}

fn uuid_hex(uuid: &[u8; 16]) -> String {
    uuid.iter().map(|b| format!("{b:02x}")).collect()
}

fn configs_json(configs: &BTreeMap<String, String>) -> String {
    serde_json::to_string(configs).unwrap_or_else(|_| "{}".into())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || d.message().contains("UNIQUE constraint failed")
                || d.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}

/// Inserts a new partition, led by `leader` from epoch 1 at offset 0.
async fn insert_partition(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    topic_id: i64,
    partition: i64,
    leader: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO partitions (topic_id, partition_id, leader, leader_epoch, log_start, next_offset) VALUES ($1, $2, $3, 1, 0, 0)",
    )
    .bind(topic_id)
    .bind(partition)
    .bind(leader)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO leader_epochs (topic_id, partition_id, leader_epoch, start_offset) VALUES ($1, $2, 1, 0)",
    )
    .bind(topic_id)
    .bind(partition)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Catalog for SqlCatalog {
    async fn migrate(&self) -> Result<()> {
        for stmt in SCHEMA {
            self.writer.execute(*stmt).await?;
        }
        Ok(())
    }

    async fn create_topic(&self, t: &TopicRow, leader: &str) -> Result<()> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        let inserted = sqlx::query(
            "INSERT INTO topics (id, name, uuid, partitions, configs, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t.id)
        .bind(&t.name)
        .bind(uuid_hex(&t.uuid))
        .bind(t.partitions as i64)
        .bind(configs_json(&t.configs))
        .bind(t.created_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StorageError::TopicExists(t.name.clone()))
            }
            other => other?,
        };
        for p in 0..t.partitions as i64 {
            insert_partition(&mut tx, t.id, p, leader).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<TopicRow>> {
        let rows = sqlx::query(
            "SELECT id, name, uuid, partitions, configs, created_ms FROM topics ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(topic_from_row).collect()
    }

    async fn delete_topic(&self, topic_id: i64) -> Result<()> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        if self.dialect == Dialect::Postgres {
            // A commit locks its partitions first, in (topic, partition)
            // order, then producer rows; take the partitions first in the
            // same order, or a commit racing the deletion can deadlock
            // with it (one of them aborted after deadlock_timeout).
            sqlx::query(
                "SELECT 1 FROM partitions WHERE topic_id = $1 ORDER BY partition_id FOR UPDATE",
            )
            .bind(topic_id)
            .fetch_all(&mut *tx)
            .await?;
        }
        for stmt in [
            // Kafka forgets the offsets committed for a deleted topic; a
            // topic created again under the name must not inherit them.
            "DELETE FROM group_offsets WHERE topic = (SELECT name FROM topics WHERE id = $1)",
            "DELETE FROM chunks WHERE topic_id = $1",
            "DELETE FROM producer_states WHERE topic_id = $1",
            "DELETE FROM cleaned_offsets WHERE topic_id = $1",
            "DELETE FROM leader_epochs WHERE topic_id = $1",
            "DELETE FROM partitions WHERE topic_id = $1",
            "DELETE FROM topics WHERE id = $1",
        ] {
            sqlx::query(stmt).bind(topic_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_topic_configs(
        &self,
        topic_id: i64,
        configs: &BTreeMap<String, String>,
    ) -> Result<()> {
        let r = sqlx::query("UPDATE topics SET configs = $1 WHERE id = $2")
            .bind(configs_json(configs))
            .bind(topic_id)
            .execute(&self.writer)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StorageError::UnknownTopic(format!("id {topic_id}")));
        }
        Ok(())
    }

    async fn add_partitions(
        &self,
        topic_id: i64,
        count: i32,
        leader: &str,
    ) -> Result<Vec<PartitionRow>> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        let current: i64 = sqlx::query("SELECT partitions FROM topics WHERE id = $1")
            .bind(topic_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StorageError::UnknownTopic(format!("id {topic_id}")))?
            .try_get(0)?;
        let mut rows = Vec::new();
        for p in current..count as i64 {
            insert_partition(&mut tx, topic_id, p, leader).await?;
            rows.push(PartitionRow {
                topic_id,
                partition: p as i32,
                leader_epoch: 1,
                log_start: 0,
                next_offset: 0,
            });
        }
        if count as i64 > current {
            sqlx::query("UPDATE topics SET partitions = $1 WHERE id = $2")
                .bind(count as i64)
                .bind(topic_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows)
    }

    async fn take_over(
        &self,
        topic_id: i64,
        leader: &str,
        partition: Option<i32>,
    ) -> Result<Vec<PartitionRow>> {
        // -1 selects every partition.
        let only = partition.map(i64::from).unwrap_or(-1);
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        if self.dialect == Dialect::Postgres {
            // Lock the rows in (topic, partition) order, as commits do, so
            // a takeover and a commit cannot deadlock.
            sqlx::query(
                "SELECT 1 FROM partitions WHERE topic_id = $1 AND ($2 = -1 OR partition_id = $2) ORDER BY partition_id FOR UPDATE",
            )
            .bind(topic_id)
            .bind(only)
            .fetch_all(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE partitions SET leader_epoch = leader_epoch + 1, leader = $1 WHERE topic_id = $2 AND ($3 = -1 OR partition_id = $3)",
        )
        .bind(leader)
        .bind(topic_id)
        .bind(only)
        .execute(&mut *tx)
        .await?;
        // Each new epoch begins at the offset the partition is taken over
        // at. Epochs that began there too led no records: they go, as
        // Kafka's epoch cache drops them, so that restarts of an idle
        // broker do not pile up rows.
        sqlx::query(
            "DELETE FROM leader_epochs WHERE topic_id = $1 AND ($2 = -1 OR partition_id = $2) \
             AND start_offset >= (SELECT p.next_offset FROM partitions p \
             WHERE p.topic_id = leader_epochs.topic_id AND p.partition_id = leader_epochs.partition_id)",
        )
        .bind(topic_id)
        .bind(only)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO leader_epochs (topic_id, partition_id, leader_epoch, start_offset) \
             SELECT topic_id, partition_id, leader_epoch, next_offset FROM partitions \
             WHERE topic_id = $1 AND ($2 = -1 OR partition_id = $2) \
             ON CONFLICT (topic_id, partition_id, leader_epoch) DO NOTHING",
        )
        .bind(topic_id)
        .bind(only)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT topic_id, partition_id, leader_epoch, log_start, next_offset FROM partitions WHERE topic_id = $1 AND ($2 = -1 OR partition_id = $2) ORDER BY partition_id",
        )
        .bind(topic_id)
        .bind(only)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(partition_from_row).collect()
    }

    async fn register_object(&self, o: &ObjectRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO objects (id, path, state, size_bytes, owner, created_ms, expires_ms) VALUES ($1, $2, 'prepared', 0, $3, $4, $5)",
        )
        .bind(o.id)
        .bind(&o.path)
        .bind(&o.owner)
        .bind(o.created_ms)
        .bind(o.expires_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn commit(&self, c: &Commit) -> Result<CommitOutcome> {
        commit::run(&self.writer, self.dialect, c).await
    }

    async fn object_committed(&self, object_id: i64) -> Result<bool> {
        let row = sqlx::query("SELECT state FROM objects WHERE id = $1")
            .bind(object_id)
            .fetch_optional(&self.writer)
            .await?;
        Ok(match row {
            // Committed, possibly since left by its chunks; never a
            // prepared object, nor one claimed for collection.
            Some(r) => matches!(
                r.try_get::<String, _>(0)?.as_str(),
                "committed" | "unreferenced"
            ),
            None => false,
        })
    }

    async fn init_producer_id(
        &self,
        held: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        if let Some(h) = held {
            let latest =
                sqlx::query("SELECT producer_epoch FROM producer_ids WHERE producer_id = $1")
                    .bind(h.producer_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get::<i64, _>(0))
                    .transpose()?;
            if let Some(latest) = latest {
                let latest = latest as i16;
                let same_id = |epoch| ProducerIdAndEpoch {
                    producer_id: h.producer_id,
                    epoch,
                };
                match epoch_bump(latest, h.epoch) {
                    EpochBump::Bump(epoch) => {
                        // Conditional, so that of two concurrent bumps
                        // (PostgreSQL) only one wins.
                        let r = sqlx::query("UPDATE producer_ids SET producer_epoch = $1 WHERE producer_id = $2 AND producer_epoch = $3")
                            .bind(epoch as i64)
                            .bind(h.producer_id)
                            .bind(latest as i64)
                            .execute(&mut *tx)
                            .await?;
                        if r.rows_affected() != 1 {
                            return Err(StorageError::ProducerFenced {
                                producer_id: h.producer_id,
                                epoch: h.epoch,
                                latest: epoch,
                            });
                        }
                        tx.commit().await?;
                        return Ok(same_id(epoch));
                    }
                    EpochBump::Repeat(epoch) => return Ok(same_id(epoch)),
                    EpochBump::Fenced => {
                        return Err(StorageError::ProducerFenced {
                            producer_id: h.producer_id,
                            epoch: h.epoch,
                            latest,
                        })
                    }
                    EpochBump::NewId => {}
                }
            }
        }
        // The counter row's update serialises allocations, and ids are
        // never reused, across restarts and brokers alike.
        let next: i64 = sqlx::query(
            "UPDATE counters SET value = value + 1 WHERE name = 'next_producer_id' RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let producer_id = next - 1;
        sqlx::query(
            "INSERT INTO producer_ids (producer_id, producer_epoch, created_ms) VALUES ($1, 0, $2)",
        )
        .bind(producer_id)
        .bind(crate::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ProducerIdAndEpoch {
            producer_id,
            epoch: 0,
        })
    }

    async fn producer_states(
        &self,
        topic_id: i64,
        partition: Option<i32>,
    ) -> Result<Vec<ProducerStateRow>> {
        let only = partition.map(i64::from).unwrap_or(-1);
        let rows = sqlx::query(
            "SELECT topic_id, partition_id, producer_id, producer_epoch, batches, last_timestamp FROM producer_states WHERE topic_id = $1 AND ($2 = -1 OR partition_id = $2) ORDER BY partition_id, producer_id",
        )
        .bind(topic_id)
        .bind(only)
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(producer_state_from_row).collect()
    }

    async fn forget_producers(
        &self,
        topic_id: i64,
        partition: i32,
        producer_ids: &[i64],
        idle_before: i64,
    ) -> Result<()> {
        let mut ids = producer_ids.to_vec();
        ids.sort_unstable();
        for group in ids.chunks(64) {
            let list = (0..group.len())
                .map(|i| format!("${}", i + 4))
                .collect::<Vec<_>>()
                .join(", ");
            let which = format!(
                "FROM producer_states WHERE topic_id = $1 AND partition_id = $2 \
                 AND last_timestamp < $3 AND producer_id IN ({list})"
            );
            let bind = |sql: String| {
                let mut q = sqlx::query(AssertSqlSafe(sql))
                    .bind(topic_id)
                    .bind(i64::from(partition))
                    .bind(idle_before);
                for id in group {
                    q = q.bind(*id);
                }
                q
            };
            let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
            if self.dialect == Dialect::Postgres {
                // A DELETE locks rows in its plan's order; commits upsert
                // producer rows in id order, so lock them that way first.
                bind(format!("SELECT 1 {which} ORDER BY producer_id FOR UPDATE"))
                    .fetch_all(&mut *tx)
                    .await?;
            }
            bind(format!("DELETE {which}")).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn chunks_from(
        &self,
        topic_id: i64,
        partition: i32,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ChunkRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CHUNK_COLUMNS} FROM chunks WHERE topic_id = $1 AND partition_id = $2 \
             AND base_offset >= COALESCE((SELECT MAX(base_offset) FROM chunks \
                 WHERE topic_id = $1 AND partition_id = $2 AND base_offset <= $3), $3) \
             AND last_offset >= $3 ORDER BY base_offset LIMIT $4"
        )))
        .bind(topic_id)
        .bind(partition as i64)
        .bind(offset)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(chunk_from_row).collect()
    }

    async fn chunk_at_time(
        &self,
        topic_id: i64,
        partition: i32,
        timestamp: i64,
    ) -> Result<Option<ChunkRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CHUNK_COLUMNS} FROM chunks WHERE topic_id = $1 AND partition_id = $2 AND max_timestamp >= $3 ORDER BY base_offset LIMIT 1"
        )))
        .bind(topic_id)
        .bind(partition as i64)
        .bind(timestamp)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(chunk_from_row).transpose()
    }

    async fn chunk_with_max_time(&self, topic_id: i64, partition: i32) -> Result<Option<ChunkRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CHUNK_COLUMNS} FROM chunks WHERE topic_id = $1 AND partition_id = $2 ORDER BY max_timestamp DESC, base_offset ASC LIMIT 1"
        )))
        .bind(topic_id)
        .bind(partition as i64)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(chunk_from_row).transpose()
    }

    async fn partition_bytes_from(
        &self,
        topic_id: i64,
        partition: i32,
        offset: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(byte_len), 0) AS BIGINT) AS total FROM chunks \
             WHERE topic_id = $1 AND partition_id = $2 AND base_offset >= $3",
        )
        .bind(topic_id)
        .bind(partition as i64)
        .bind(offset)
        .fetch_one(&self.reader)
        .await?;
        // SUM is NUMERIC on PostgreSQL, hence the cast.
        Ok(row.try_get::<i64, _>(0)?)
    }

    async fn epoch_starts(&self, topic_id: i64, partition: i32) -> Result<Vec<EpochStart>> {
        let rows = sqlx::query(
            "SELECT leader_epoch, start_offset FROM leader_epochs WHERE topic_id = $1 AND partition_id = $2 ORDER BY leader_epoch",
        )
        .bind(topic_id)
        .bind(partition as i64)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EpochStart {
                    leader_epoch: r.try_get::<i64, _>(0)? as i32,
                    start_offset: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn cleaned_offset(&self, topic_id: i64, partition: i32) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT cleaned_to FROM cleaned_offsets WHERE topic_id = $1 AND partition_id = $2",
        )
        .bind(topic_id)
        .bind(partition as i64)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }

    async fn set_cleaned_offset(&self, topic_id: i64, partition: i32, offset: i64) -> Result<()> {
        // Only for a partition that still exists, so that a topic deleted
        // during its compaction leaves no row behind; and never backwards.
        sqlx::query(
            "INSERT INTO cleaned_offsets (topic_id, partition_id, cleaned_to) \
             SELECT topic_id, partition_id, $3 FROM partitions WHERE topic_id = $1 AND partition_id = $2 \
             ON CONFLICT (topic_id, partition_id) DO UPDATE SET cleaned_to = \
             CASE WHEN excluded.cleaned_to > cleaned_offsets.cleaned_to \
             THEN excluded.cleaned_to ELSE cleaned_offsets.cleaned_to END",
        )
        .bind(topic_id)
        .bind(partition as i64)
        .bind(offset)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn bytes_by_topic(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT t.name, CAST(COALESCE(SUM(c.byte_len), 0) AS BIGINT) AS total FROM topics t LEFT JOIN chunks c ON c.topic_id = t.id GROUP BY t.name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }

    async fn advance_log_start(
        &self,
        topic_id: i64,
        partition: i32,
        leader_epoch: i32,
        log_start: i64,
    ) -> Result<bool> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        let r = sqlx::query(
            "UPDATE partitions SET log_start = $1 WHERE topic_id = $2 AND partition_id = $3 AND leader_epoch = $4 AND log_start < $1 AND next_offset >= $1",
        )
        .bind(log_start)
        .bind(topic_id)
        .bind(partition as i64)
        .bind(leader_epoch as i64)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM chunks WHERE topic_id = $1 AND partition_id = $2 AND base_offset < $3 AND last_offset < $3",
        )
        .bind(topic_id)
        .bind(partition as i64)
        .bind(log_start)
        .execute(&mut *tx)
        .await?;
        // Epochs that ended before the log start answer nothing any more:
        // keep the one the log start falls in, and those after it, as
        // Kafka's epoch cache is truncated from the start.
        sqlx::query(
            "DELETE FROM leader_epochs WHERE topic_id = $1 AND partition_id = $2 AND leader_epoch < \
             (SELECT MAX(e.leader_epoch) FROM leader_epochs e \
              WHERE e.topic_id = $1 AND e.partition_id = $2 AND e.start_offset <= $3)",
        )
        .bind(topic_id)
        .bind(partition as i64)
        .bind(log_start)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn collectable_objects(
        &self,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<Vec<CollectableObject>> {
        sqlx::query(
            "UPDATE objects SET state = 'unreferenced', expires_ms = $1 WHERE state = 'committed' AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.object_id = objects.id)",
        )
        .bind(now_ms + grace_ms)
        .execute(&self.writer)
        .await?;
        // Claimed before any file is deleted: a commit needs its object
        // still 'prepared', so a flush that stalled past its object's
        // expiry can no longer commit chunks into a deleted file. Objects
        // claimed by a pass that did not finish are claimed again.
        let rows = sqlx::query(
            "UPDATE objects SET state = 'collecting' \
             WHERE (state IN ('prepared', 'unreferenced') AND expires_ms < $1) OR state = 'collecting' \
             RETURNING id, path",
        )
        .bind(now_ms)
        .fetch_all(&self.writer)
        .await?;
        let mut found = rows
            .iter()
            .map(|r| {
                Ok(CollectableObject {
                    id: r.try_get("id")?,
                    path: r.try_get("path")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        found.sort_by_key(|o| o.id);
        Ok(found)
    }

    async fn small_objects(&self, max_bytes: i64, limit: i64) -> Result<Vec<SmallObject>> {
        let rows = sqlx::query(
            "SELECT id, size_bytes, created_ms FROM objects WHERE state = 'committed' \
             AND size_bytes < $1 \
             AND NOT EXISTS (SELECT 1 FROM merged_objects m WHERE m.object_id = objects.id) \
             AND EXISTS (SELECT 1 FROM chunks c WHERE c.object_id = objects.id) \
             ORDER BY created_ms, id LIMIT $2",
        )
        .bind(max_bytes)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SmallObject {
                    id: r.try_get("id")?,
                    size_bytes: r.try_get("size_bytes")?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect()
    }

    async fn chunks_in_objects(&self, object_ids: &[i64]) -> Result<Vec<ChunkRow>> {
        let mut out = Vec::new();
        for group in object_ids.chunks(256) {
            let placeholders = (1..=group.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut q = sqlx::query(AssertSqlSafe(format!(
                "SELECT {CHUNK_COLUMNS} FROM chunks WHERE object_id IN ({placeholders})"
            )));
            for id in group {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.reader).await? {
                out.push(chunk_from_row(&r)?);
            }
        }
        out.sort_by_key(|c| (c.topic_id, c.partition, c.base_offset));
        Ok(out)
    }

    async fn merge_chunks(&self, m: &Merge) -> Result<bool> {
        merge::run(&self.writer, self.dialect, m).await
    }

    async fn forget_object(&self, object_id: i64) -> Result<()> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        let r = sqlx::query("DELETE FROM objects WHERE id = $1 AND state = 'collecting'")
            .bind(object_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 1 {
            sqlx::query("DELETE FROM merged_objects WHERE object_id = $1")
                .bind(object_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn save_group(&self, g: &GroupRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO consumer_groups (group_id, protocol_type, created_ms) VALUES ($1, $2, $3) ON CONFLICT (group_id) DO NOTHING",
        )
        .bind(&g.group_id)
        .bind(&g.protocol_type)
        .bind(g.created_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn list_groups(&self) -> Result<Vec<GroupRow>> {
        let rows = sqlx::query(
            "SELECT group_id, protocol_type, created_ms FROM consumer_groups ORDER BY group_id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GroupRow {
                    group_id: r.try_get(0)?,
                    protocol_type: r.try_get(1)?,
                    created_ms: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn group_exists(&self, group_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM consumer_groups WHERE group_id = $1")
            .bind(group_id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.is_some())
    }

    async fn delete_group(&self, group_id: &str) -> Result<bool> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        sqlx::query("DELETE FROM group_offsets WHERE group_id = $1")
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM group_states WHERE group_id = $1")
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM consumer_groups WHERE group_id = $1")
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    async fn commit_offsets(&self, g: &GroupRow, offsets: &[OffsetRow]) -> Result<()> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        sqlx::query(
            "INSERT INTO consumer_groups (group_id, protocol_type, created_ms) VALUES ($1, $2, $3) ON CONFLICT (group_id) DO NOTHING",
        )
        .bind(&g.group_id)
        .bind(&g.protocol_type)
        .bind(g.created_ms)
        .execute(&mut *tx)
        .await?;
        for o in offsets {
            sqlx::query(
                "INSERT INTO group_offsets (group_id, topic, partition_id, committed_offset, leader_epoch, metadata, commit_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (group_id, topic, partition_id) DO UPDATE SET
                   committed_offset = excluded.committed_offset,
                   leader_epoch = excluded.leader_epoch,
                   metadata = excluded.metadata,
                   commit_ms = excluded.commit_ms",
            )
            .bind(&g.group_id)
            .bind(&o.topic)
            .bind(o.partition as i64)
            .bind(o.offset)
            .bind(o.leader_epoch as i64)
            .bind(o.metadata.as_deref())
            .bind(o.commit_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn group_offsets(&self, group_id: &str) -> Result<Vec<OffsetRow>> {
        let rows = sqlx::query(
            "SELECT topic, partition_id, committed_offset, leader_epoch, metadata, commit_ms
             FROM group_offsets WHERE group_id = $1 ORDER BY topic, partition_id",
        )
        .bind(group_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OffsetRow {
                    topic: r.try_get(0)?,
                    partition: r.try_get::<i64, _>(1)? as i32,
                    offset: r.try_get(2)?,
                    leader_epoch: r.try_get::<i64, _>(3)? as i32,
                    metadata: r.try_get(4)?,
                    commit_ms: r.try_get(5)?,
                })
            })
            .collect()
    }

    async fn delete_offsets(&self, group_id: &str, partitions: &[(String, i32)]) -> Result<()> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        for (topic, partition) in partitions {
            sqlx::query(
                "DELETE FROM group_offsets WHERE group_id = $1 AND topic = $2 AND partition_id = $3",
            )
            .bind(group_id)
            .bind(topic)
            .bind(*partition as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn save_group_state(&self, group_id: &str, state: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO group_states (group_id, state, updated_ms) VALUES ($1, $2, $3)
             ON CONFLICT (group_id) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
        )
        .bind(group_id)
        .bind(state)
        .bind(now_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn group_states(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT group_id, state FROM group_states ORDER BY group_id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn create_tenant(&self, t: &TenantRow) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO tenants (name, plan, created_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&t.name)
        .bind(&t.plan)
        .bind(t.created_ms)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn list_tenants(&self) -> Result<Vec<TenantRow>> {
        let rows = sqlx::query("SELECT name, plan, created_ms FROM tenants ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TenantRow {
                    name: r.try_get(0)?,
                    plan: r.try_get(1)?,
                    created_ms: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn set_tenant_plan(&self, name: &str, plan: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE tenants SET plan = $2 WHERE name = $1")
            .bind(name)
            .bind(plan)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_tenant(&self, name: &str) -> Result<bool> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        sqlx::query("DELETE FROM credentials WHERE tenant = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM api_tokens WHERE tenant = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM tenants WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    async fn save_credential(&self, c: &CredentialRow) -> Result<bool> {
        // Only for a live tenant, and never taking over another tenant's
        // username: the conflict update is guarded by the owning tenant.
        let r = sqlx::query(
            "INSERT INTO credentials (username, tenant, secret, created_ms)
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM tenants WHERE name = $2)
             ON CONFLICT (username) DO UPDATE SET secret = excluded.secret, created_ms = excluded.created_ms
             WHERE credentials.tenant = excluded.tenant",
        )
        .bind(&c.username)
        .bind(&c.tenant)
        .bind(&c.secret)
        .bind(c.created_ms)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn list_credentials(&self) -> Result<Vec<CredentialRow>> {
        let rows = sqlx::query(
            "SELECT username, tenant, secret, created_ms FROM credentials ORDER BY username",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CredentialRow {
                    username: r.try_get(0)?,
                    tenant: r.try_get(1)?,
                    secret: r.try_get(2)?,
                    created_ms: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn delete_credential(&self, username: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM credentials WHERE username = $1")
            .bind(username)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn save_token(&self, t: &TokenRow) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO api_tokens (id, tenant, hash, created_ms)
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM tenants WHERE name = $2)",
        )
        .bind(&t.id)
        .bind(&t.tenant)
        .bind(&t.hash)
        .bind(t.created_ms)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query("SELECT id, tenant, hash, created_ms FROM api_tokens ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRow {
                    id: r.try_get(0)?,
                    tenant: r.try_get(1)?,
                    hash: r.try_get(2)?,
                    created_ms: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn delete_token(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn add_acls(&self, acls: &[AclRow]) -> Result<()> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        for a in acls {
            sqlx::query(
                "INSERT INTO acls (resource_type, resource_name, pattern_type, principal, host, operation, permission)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(a.resource_type as i64)
            .bind(&a.resource_name)
            .bind(a.pattern_type as i64)
            .bind(&a.principal)
            .bind(&a.host)
            .bind(a.operation as i64)
            .bind(a.permission as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_acls(&self) -> Result<Vec<AclRow>> {
        let rows = sqlx::query(
            "SELECT resource_type, resource_name, pattern_type, principal, host, operation, permission
             FROM acls ORDER BY principal, resource_type, resource_name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AclRow {
                    resource_type: r.try_get::<i64, _>(0)? as i8,
                    resource_name: r.try_get(1)?,
                    pattern_type: r.try_get::<i64, _>(2)? as i8,
                    principal: r.try_get(3)?,
                    host: r.try_get(4)?,
                    operation: r.try_get::<i64, _>(5)? as i8,
                    permission: r.try_get::<i64, _>(6)? as i8,
                })
            })
            .collect()
    }

    async fn delete_acls(&self, acls: &[AclRow]) -> Result<u64> {
        let mut tx = self.writer.begin_with(self.dialect.begin_write()).await?;
        let mut removed = 0;
        for a in acls {
            let r = sqlx::query(
                "DELETE FROM acls WHERE resource_type = $1 AND resource_name = $2 AND pattern_type = $3
                 AND principal = $4 AND host = $5 AND operation = $6 AND permission = $7",
            )
            .bind(a.resource_type as i64)
            .bind(&a.resource_name)
            .bind(a.pattern_type as i64)
            .bind(&a.principal)
            .bind(&a.host)
            .bind(a.operation as i64)
            .bind(a.permission as i64)
            .execute(&mut *tx)
            .await?;
            removed += r.rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }
}
