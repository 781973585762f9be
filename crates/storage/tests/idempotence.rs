//! Idempotent producers through the storage service on the embedded
//! backends: a retry is acknowledged with its original offset and not
//! appended, gaps and stale epochs are refused, producer state survives a
//! reopen, a failed commit rolls it back with the offsets, and idle
//! producers' state expires.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record};
use sluice_protocol::ErrorCode;
use sluice_storage::storage::LATEST;
use sluice_storage::{now_ms, Storage, StorageOptions};

mod common;

/// A batch of `n` records from producer `pid` at `epoch`, sequences from `seq`.
fn batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    batch_at(pid, epoch, seq, n, now_ms())
}

/// The same, with records stamped `timestamp`.
fn batch_at(pid: i64, epoch: i16, seq: i32, n: usize, timestamp: i64) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| {
            let value = Bytes::from(format!("{pid}-{epoch}-{}", seq + i as i32));
            Record {
                producer_id: pid,
                producer_epoch: epoch,
                sequence: seq.wrapping_add(i as i32),
                ..common::record(i as i64, timestamp, None, Some(value))
            }
        })
        .collect();
    common::encode(&records, Compression::None)
}

/// Embedded backends in `dir`, with maintenance left to the test.
fn options(dir: &std::path::Path) -> StorageOptions {
    let mut opts = StorageOptions::new(
        format!("sqlite://{}/catalog.db", dir.display()),
        format!("file://{}/objects", dir.display()),
    );
    opts.maintenance_interval = Duration::from_secs(3600);
    opts
}

async fn open(dir: &std::path::Path) -> Arc<Storage> {
    Storage::open(options(dir)).await.unwrap()
}

async fn latest(s: &Storage, topic: &str) -> i64 {
    s.offset_at(topic, 0, LATEST).await.unwrap().offset
}

/// The base offset of an append, or the Kafka error code and message.
async fn append(s: &Storage, topic: &str, records: Bytes) -> Result<i64, (ErrorCode, String)> {
    s.append(topic, 0, records)
        .await
        .map(|(a, _)| a.base_offset)
        .map_err(|e| (e.code(), e.to_string()))
}

fn code(r: Result<i64, (ErrorCode, String)>) -> ErrorCode {
    match r {
        Ok(offset) => panic!("expected a refusal, got offset {offset}"),
        Err((code, message)) => {
            assert!(!message.is_empty());
            code
        }
    }
}

#[tokio::test]
async fn retries_gaps_and_stale_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.create_topic("t", 1, BTreeMap::new(), false)
        .await
        .unwrap();
    let p = s.init_producer_id(None).await.unwrap();
    let id = p.producer_id;

    assert_eq!(append(&s, "t", batch(id, 0, 0, 3)).await, Ok(0));
    assert_eq!(append(&s, "t", batch(-1, -1, -1, 2)).await, Ok(3));
    assert_eq!(append(&s, "t", batch(id, 0, 3, 2)).await, Ok(5));
    // Retries of either batch: the original offset, nothing appended.
    assert_eq!(append(&s, "t", batch(id, 0, 0, 3)).await, Ok(0));
    assert_eq!(append(&s, "t", batch(id, 0, 3, 2)).await, Ok(5));
    assert_eq!(latest(&s, "t").await, 7);

    // A gap, and a batch overlapping the last one.
    let e = append(&s, "t", batch(id, 0, 6, 1)).await;
    assert!(
        matches!(&e, Err((_, m)) if m.contains("expected 5")),
        "{e:?}"
    );
    assert_eq!(code(e), ErrorCode::OutOfOrderSequenceNumber);
    assert_eq!(
        code(append(&s, "t", batch(id, 0, 4, 2)).await),
        ErrorCode::OutOfOrderSequenceNumber
    );
    // A producer the partition has no state for may start anywhere, as in
    // Kafka (its state may have expired).
    assert_eq!(append(&s, "t", batch(id + 1000, 0, 5, 1)).await, Ok(7));

    // A bumped epoch starts at 0; then the old epoch is fenced.
    let bumped = s.init_producer_id(Some(p)).await.unwrap();
    assert_eq!((bumped.producer_id, bumped.epoch), (id, 1));
    assert_eq!(
        code(append(&s, "t", batch(id, 1, 5, 1)).await),
        ErrorCode::OutOfOrderSequenceNumber
    );
    assert_eq!(append(&s, "t", batch(id, 1, 0, 1)).await, Ok(8));
    assert_eq!(
        code(append(&s, "t", batch(id, 0, 5, 1)).await),
        ErrorCode::InvalidProducerEpoch
    );
    assert_eq!(latest(&s, "t").await, 9, "refused batches are not appended");

    // Transactional batches are refused until transactions land.
    let mut txn = BytesMut::from(&batch(id, 1, 1, 1)[..]);
    txn[22] |= 0x10;
    let crc = crc32c::crc32c(&txn[21..]);
    txn[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        code(append(&s, "t", txn.freeze()).await),
        ErrorCode::InvalidRecord
    );
}

#[tokio::test]
async fn a_retry_of_a_batch_in_flight_gets_the_original_offset() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.create_topic("t", 1, BTreeMap::new(), false)
        .await
        .unwrap();
    let id = s.init_producer_id(None).await.unwrap().producer_id;
    for round in 0..20 {
        let seq = round * 4;
        // Queue the batch and its retry before either is committed.
        let first = s
            .enqueue_append("t", 0, batch(id, 0, seq, 4))
            .await
            .unwrap();
        let retry = s
            .enqueue_append("t", 0, batch(id, 0, seq, 4))
            .await
            .unwrap();
        let (a, _) = first.wait().await.unwrap();
        let (b, _) = retry.wait().await.unwrap();
        assert_eq!(a.base_offset, seq as i64);
        assert_eq!(b.base_offset, a.base_offset, "round {round}");
    }
    assert_eq!(latest(&s, "t").await, 80);
}

#[tokio::test]
async fn producer_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.create_topic("t", 2, BTreeMap::new(), false)
        .await
        .unwrap();
    let id = s.init_producer_id(None).await.unwrap().producer_id;
    for seq in [0, 2, 4, 6, 8, 10] {
        append(&s, "t", batch(id, 0, seq, 2)).await.unwrap();
    }
    s.shutdown().await;
    drop(s);

    let s = open(dir.path()).await;
    assert_eq!(s.partition("t", 0).unwrap().producer_count(), 1);
    assert_eq!(s.partition("t", 1).unwrap().producer_count(), 0);
    // The last five batches are still recognised; the sixth from last is not.
    assert_eq!(append(&s, "t", batch(id, 0, 2, 2)).await, Ok(2));
    assert_eq!(append(&s, "t", batch(id, 0, 10, 2)).await, Ok(10));
    assert_eq!(
        code(append(&s, "t", batch(id, 0, 0, 2)).await),
        ErrorCode::OutOfOrderSequenceNumber
    );
    assert_eq!(append(&s, "t", batch(id, 0, 12, 1)).await, Ok(12));
    // New producer ids never repeat across restarts.
    assert!(s.init_producer_id(None).await.unwrap().producer_id > id);
}

#[tokio::test]
async fn a_failed_commit_rolls_producer_state_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.create_topic("t", 1, BTreeMap::new(), false)
        .await
        .unwrap();
    let id = s.init_producer_id(None).await.unwrap().producer_id;
    assert_eq!(append(&s, "t", batch(id, 0, 0, 3)).await, Ok(0));

    // Every object write fails: the batch, its queued successor and a
    // retry queued behind it all fail, and none of them is remembered.
    let objects = dir.path().join("objects/objects");
    std::fs::rename(&objects, dir.path().join("objects/moved")).unwrap();
    std::fs::write(&objects, b"not a directory").unwrap();
    let tickets = [
        s.enqueue_append("t", 0, batch(id, 0, 3, 2)).await.unwrap(),
        s.enqueue_append("t", 0, batch(id, 0, 5, 2)).await.unwrap(),
        s.enqueue_append("t", 0, batch(id, 0, 3, 2)).await.unwrap(),
    ];
    for t in tickets {
        match t.wait().await {
            Ok((a, _)) => panic!("appended at {} while writes fail", a.base_offset),
            // The successor may instead be refused as a gap once its
            // predecessor was rolled back; both are retriable for a producer.
            Err(e) => assert!(
                matches!(
                    e.code(),
                    ErrorCode::KafkaStorageError | ErrorCode::OutOfOrderSequenceNumber
                ),
                "{e}"
            ),
        }
    }
    std::fs::remove_file(&objects).unwrap();
    std::fs::rename(dir.path().join("objects/moved"), &objects).unwrap();

    // The producer resends in order: sequence 3 is new again, at the next
    // dense offset; 5 follows.
    assert_eq!(
        code(append(&s, "t", batch(id, 0, 5, 2)).await),
        ErrorCode::OutOfOrderSequenceNumber
    );
    assert_eq!(append(&s, "t", batch(id, 0, 3, 2)).await, Ok(3));
    assert_eq!(append(&s, "t", batch(id, 0, 5, 2)).await, Ok(5));
    assert_eq!(append(&s, "t", batch(id, 0, 3, 2)).await, Ok(3));
    assert_eq!(latest(&s, "t").await, 7);

    // And what was committed is what a new leader loads.
    s.shutdown().await;
    drop(s);
    let s = open(dir.path()).await;
    assert_eq!(append(&s, "t", batch(id, 0, 5, 2)).await, Ok(5));
    assert_eq!(append(&s, "t", batch(id, 0, 7, 1)).await, Ok(7));
}

#[tokio::test]
async fn deleting_a_topic_forgets_its_producers() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.create_topic("t", 1, BTreeMap::new(), false)
        .await
        .unwrap();
    let id = s.init_producer_id(None).await.unwrap().producer_id;
    append(&s, "t", batch(id, 0, 0, 2)).await.unwrap();
    s.delete_topic("t").await.unwrap();
    s.create_topic("t", 1, BTreeMap::new(), false)
        .await
        .unwrap();
    assert_eq!(s.partition("t", 0).unwrap().producer_count(), 0);
    assert_eq!(append(&s, "t", batch(-1, -1, -1, 3)).await, Ok(0));
    // Not a retry any more: appended, not answered with offset 0.
    assert_eq!(append(&s, "t", batch(id, 0, 0, 2)).await, Ok(3));
}

#[tokio::test]
async fn idle_producers_expire_in_memory_and_in_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.producer_id_expiration_ms = 2_000;
    let s = Storage::open(opts.clone()).await.unwrap();
    s.create_topic("t", 1, BTreeMap::new(), false)
        .await
        .unwrap();
    let idle = s.init_producer_id(None).await.unwrap().producer_id;
    let busy = s.init_producer_id(None).await.unwrap().producer_id;
    assert_eq!(append(&s, "t", batch(idle, 0, 0, 2)).await, Ok(0));
    // `busy` writes records stamped two days ago: Kafka would expire it by
    // those timestamps; the broker's clock says it is writing.
    let old = now_ms() - 2 * 86_400_000;
    let mut next = 2;
    for seq in 0..15 {
        let records = batch_at(busy, 0, seq * 2, 2, old);
        assert_eq!(append(&s, "t", records).await, Ok(next));
        next += 2;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.expire_producers().await;
    assert_eq!(s.partition("t", 0).unwrap().producer_count(), 1);

    // Forgotten in the catalog too: after a restart, `idle`'s retry is
    // appended again, and `busy`'s last batch is still recognised.
    s.shutdown().await;
    drop(s);
    let s = Storage::open(opts).await.unwrap();
    assert_eq!(s.partition("t", 0).unwrap().producer_count(), 1);
    assert_eq!(
        append(&s, "t", batch_at(busy, 0, 28, 2, old)).await,
        Ok(next - 2)
    );
    assert_eq!(append(&s, "t", batch(idle, 0, 0, 2)).await, Ok(next));
    // And `idle` goes on from there.
    assert_eq!(append(&s, "t", batch(idle, 0, 2, 1)).await, Ok(next + 2));
}
