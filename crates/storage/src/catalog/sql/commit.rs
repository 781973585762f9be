//! The catalog transaction of a group commit.
//!
//! A commit is a handful of statements: move each partition's next offset
//! (only where the writer still leads it at the expected offset), insert
//! the chunks, upsert producer state, mark the object committed and
//! register the next one. Each statement must change an exact number of
//! rows; a shortfall means a partition was fenced or the object was never
//! registered, and nothing is committed.
//!
//! Every round trip to SQLite is a hop to sqlx's worker thread, and the
//! single writer connection makes those hops the serial part of the commit
//! path. So on SQLite the statements go as one multi-statement query (one
//! hop) and only the total of changed rows is checked; if it falls short,
//! the transaction is rolled back and run again statement by statement,
//! which is also how PostgreSQL (one statement per query in its extended
//! protocol) always runs it, and which says what went wrong.

use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::{producer_batches_json, values_placeholders, Dialect, CHUNK_COLUMNS};
use crate::catalog::{Commit, CommitOutcome};
use crate::error::{Result, StorageError};

/// Rows per multi-row statement.
const ROWS_PER_STATEMENT: usize = 64;

/// A bound value.
enum Arg {
    Int(i64),
    Text(String),
}

/// What a statement's changed-row count means when it falls short.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shortfall {
    /// Some partitions were fenced (new leader, moved offset, deleted).
    Fenced,
    /// The object is not prepared (never registered, or claimed for
    /// collection).
    Unregistered,
    /// Cannot fall short without an error of its own.
    Impossible,
}

/// One statement, numbered from `$1`, with the rows it must change.
struct Statement {
    sql: String,
    args: Vec<Arg>,
    rows: u64,
    shortfall: Shortfall,
}

impl Statement {
    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
        bind(sqlx::query(AssertSqlSafe(self.sql.clone())), &self.args)
    }
}

fn bind<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    args: impl IntoIterator<Item = &'q Arg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for a in args {
        q = match a {
            Arg::Int(v) => q.bind(*v),
            Arg::Text(v) => q.bind(v.as_str()),
        };
    }
    q
}

/// Shifts every `$N` placeholder of `sql` by `offset`, so that statements
/// joined into one query index one argument list.
fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut n = 0usize;
        let mut digits = false;
        while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
            n = n * 10 + d as usize;
            digits = true;
            chars.next();
        }
        if digits {
            out.push_str(&(n + offset).to_string());
        }
    }
    out
}

/// The statements of a commit, in order.
fn statements(c: &Commit, dialect: Dialect) -> Vec<Statement> {
    let mut out = Vec::new();
    if dialect == Dialect::Postgres {
        // PostgreSQL locks rows in whatever order a join's plan visits
        // them; lock them in (topic, partition) order first, so that two
        // commits sharing partitions cannot deadlock.
        for group in c.partitions.chunks(ROWS_PER_STATEMENT) {
            out.push(Statement {
                sql: format!(
                    "SELECT 1 FROM partitions WHERE (topic_id, partition_id) IN (VALUES {}) \
                     ORDER BY topic_id, partition_id FOR UPDATE",
                    values_placeholders(group.len(), 2)
                ),
                args: group
                    .iter()
                    .flat_map(|p| [p.chunk.topic_id, p.chunk.partition as i64])
                    .map(Arg::Int)
                    .collect(),
                rows: group.len() as u64,
                shortfall: Shortfall::Fenced,
            });
        }
    }
    for group in c.partitions.chunks(ROWS_PER_STATEMENT) {
        out.push(Statement {
            sql: format!(
                "UPDATE partitions SET next_offset = v.column5 FROM (VALUES {}) AS v \
                 WHERE partitions.topic_id = v.column1 AND partitions.partition_id = v.column2 \
                 AND partitions.leader_epoch = v.column3 AND partitions.next_offset = v.column4",
                values_placeholders(group.len(), 5)
            ),
            args: group
                .iter()
                .flat_map(|p| {
                    [
                        p.chunk.topic_id,
                        p.chunk.partition as i64,
                        p.leader_epoch as i64,
                        p.chunk.base_offset,
                        p.chunk.last_offset + 1,
                    ]
                })
                .map(Arg::Int)
                .collect(),
            rows: group.len() as u64,
            shortfall: Shortfall::Fenced,
        });
    }
    for group in c.partitions.chunks(ROWS_PER_STATEMENT) {
        out.push(Statement {
            sql: format!(
                "INSERT INTO chunks ({CHUNK_COLUMNS}) VALUES {}",
                values_placeholders(group.len(), 9)
            ),
            args: group
                .iter()
                .flat_map(|p| {
                    let ch = &p.chunk;
                    [
                        ch.topic_id,
                        ch.partition as i64,
                        ch.base_offset,
                        ch.last_offset,
                        ch.max_timestamp,
                        ch.leader_epoch as i64,
                        ch.object_id,
                        ch.byte_start,
                        ch.byte_len,
                    ]
                })
                .map(Arg::Int)
                .collect(),
            rows: group.len() as u64,
            shortfall: Shortfall::Impossible,
        });
    }
    for group in c.producers.chunks(ROWS_PER_STATEMENT) {
        out.push(Statement {
            sql: format!(
                "INSERT INTO producer_states (topic_id, partition_id, producer_id, producer_epoch, batches, last_timestamp) \
                 VALUES {} ON CONFLICT (topic_id, partition_id, producer_id) DO UPDATE SET \
                 producer_epoch = excluded.producer_epoch, batches = excluded.batches, last_timestamp = excluded.last_timestamp",
                values_placeholders(group.len(), 6)
            ),
            args: group
                .iter()
                .flat_map(|p| {
                    [
                        Arg::Int(p.topic_id),
                        Arg::Int(p.partition as i64),
                        Arg::Int(p.producer_id),
                        Arg::Int(p.producer_epoch as i64),
                        Arg::Text(producer_batches_json(&p.batches)),
                        Arg::Int(p.last_timestamp),
                    ]
                })
                .collect(),
            rows: group.len() as u64,
            shortfall: Shortfall::Impossible,
        });
    }
    out.push(Statement {
        sql: "UPDATE objects SET state = 'committed', size_bytes = $1 WHERE id = $2 AND state = 'prepared'"
            .into(),
        args: vec![Arg::Int(c.object_size), Arg::Int(c.object_id)],
        rows: 1,
        shortfall: Shortfall::Unregistered,
    });
    if let Some(o) = &c.next_object {
        out.push(Statement {
            sql:
                "INSERT INTO objects (id, path, state, size_bytes, owner, created_ms, expires_ms) \
                  VALUES ($1, $2, 'prepared', 0, $3, $4, $5)"
                    .into(),
            args: vec![
                Arg::Int(o.id),
                Arg::Text(o.path.clone()),
                Arg::Text(o.owner.clone()),
                Arg::Int(o.created_ms),
                Arg::Int(o.expires_ms),
            ],
            rows: 1,
            shortfall: Shortfall::Impossible,
        });
    }
    out
}

/// Runs a commit's transaction on the writer pool.
pub(super) async fn run(writer: &AnyPool, dialect: Dialect, c: &Commit) -> Result<CommitOutcome> {
    let statements = statements(c, dialect);
    if dialect == Dialect::Sqlite {
        if in_one_query(writer, dialect, &statements).await? {
            return Ok(CommitOutcome::Committed);
        }
        // Expected only for fenced partitions; a count that grows with
        // every commit would mean the one-query path is broken.
        metrics::counter!("sluice_catalog_commit_rechecks_total").increment(1);
    }
    one_by_one(writer, dialect, c, &statements).await
}

/// The statements as one query: true if committed, false if a shortfall
/// or a failed statement rolled everything back. An error only when the
/// outcome is unknown (beginning or committing failed).
async fn in_one_query(
    writer: &AnyPool,
    dialect: Dialect,
    statements: &[Statement],
) -> Result<bool> {
    let mut sql = String::new();
    let mut offset = 0;
    for s in statements {
        sql.push_str(&renumber(&s.sql, offset));
        sql.push_str(";\n");
        offset += s.args.len();
    }
    let expected: u64 = statements.iter().map(|s| s.rows).sum();
    let mut tx = writer.begin_with(dialect.begin_write()).await?;
    let q = bind(
        sqlx::query(AssertSqlSafe(sql)),
        statements.iter().flat_map(|s| &s.args),
    );
    match q.execute(&mut *tx).await {
        Ok(r) if r.rows_affected() == expected => {
            tx.commit().await?;
            Ok(true)
        }
        _ => {
            tx.rollback().await?;
            Ok(false)
        }
    }
}

/// The statements one at a time, each checked.
async fn one_by_one(
    writer: &AnyPool,
    dialect: Dialect,
    c: &Commit,
    statements: &[Statement],
) -> Result<CommitOutcome> {
    let mut tx = writer.begin_with(dialect.begin_write()).await?;
    for s in statements {
        let changed = s.query().execute(&mut *tx).await?.rows_affected();
        if changed == s.rows {
            continue;
        }
        tx.rollback().await?;
        return match s.shortfall {
            Shortfall::Fenced => {
                let fenced = fenced(writer, c).await?;
                if fenced.is_empty() {
                    // The partitions changed between the rollback and the
                    // check: an error, not an empty fence to retry forever.
                    return Err(StorageError::Catalog(
                        "partitions changed during a commit; retry".into(),
                    ));
                }
                Ok(CommitOutcome::Fenced(fenced))
            }
            Shortfall::Unregistered => Err(StorageError::ObjectClaimed(c.object_id)),
            Shortfall::Impossible => Err(StorageError::Catalog(format!(
                "a commit statement changed {changed} rows instead of {}",
                s.rows
            ))),
        };
    }
    tx.commit().await?;
    Ok(CommitOutcome::Committed)
}

/// The partitions of a rolled-back commit that the writer no longer leads
/// at the expected offset.
async fn fenced(writer: &AnyPool, c: &Commit) -> Result<Vec<(i64, i32)>> {
    let mut fenced = Vec::new();
    for p in &c.partitions {
        let row = sqlx::query(
            "SELECT leader_epoch, next_offset FROM partitions WHERE topic_id = $1 AND partition_id = $2",
        )
        .bind(p.chunk.topic_id)
        .bind(p.chunk.partition as i64)
        .fetch_optional(writer)
        .await?;
        let current = row.map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1)));
        if current != Some((p.leader_epoch as i64, p.chunk.base_offset)) {
            fenced.push((p.chunk.topic_id, p.chunk.partition));
        }
    }
    Ok(fenced)
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn renumber_shifts_every_placeholder() {
        assert_eq!(
            renumber("VALUES ($1, $2), ($10, $11) WHERE x = 'a'", 9),
            "VALUES ($10, $11), ($19, $20) WHERE x = 'a'"
        );
        assert_eq!(renumber("no placeholders", 3), "no placeholders");
    }
}
