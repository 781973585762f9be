//! Log compaction on the embedded backends: a compacted topic keeps the
//! latest record of each key at the offset it was written with, in every
//! codec; tombstones go after `delete.retention.ms`; records without a key
//! go; new records stay until `min.compaction.lag.ms`; and where the log
//! was cleaned up to survives a restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};
use sluice_storage::compaction::CompactionLimits;
use sluice_storage::storage::LATEST;
use sluice_storage::{Storage, StorageOptions};

mod common;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// A batch of `(key, value)` records (`None` value: a tombstone).
fn keyed(records: &[(&str, Option<&str>)], compression: Compression) -> Bytes {
    keyed_at(records, compression, sluice_storage::now_ms())
}

/// `keyed`, every record stamped `now`.
fn keyed_at(records: &[(&str, Option<&str>)], compression: Compression, now: i64) -> Bytes {
    let text = |t: &str| Bytes::from(t.to_string());
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| common::record(i as i64, now, Some(text(k)), v.map(text)))
        .collect();
    common::encode(&records, compression)
}

/// A store with no in-memory tail (every read goes to the objects) and no
/// background passes (the test runs them).
async fn open(dir: &std::path::Path) -> Arc<Storage> {
    open_with(dir, CompactionLimits::default()).await
}

/// `open`, with these compaction limits.
async fn open_with(dir: &std::path::Path, limits: CompactionLimits) -> Arc<Storage> {
    let mut opts = StorageOptions::new(
        format!("sqlite://{}/catalog.db", dir.display()),
        format!("file://{}/objects", dir.display()),
    );
    opts.maintenance_interval = Duration::from_secs(3600);
    opts.collect_grace_ms = 0;
    opts.tail_bytes = 0;
    opts.compaction = limits;
    Storage::open(opts).await.unwrap()
}

/// Creates `name` (one partition), compacted, with `more` configs.
async fn compacted(s: &Storage, name: &str, more: &[(&str, &str)]) {
    let mut all = vec![("cleanup.policy", "compact")];
    all.extend_from_slice(more);
    s.create_topic(name, 1, configs(&all), false).await.unwrap();
}

fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every record of partition 0 from `from`: (offset, key, value).
async fn records(s: &Storage, topic: &str, from: i64) -> Vec<(i64, String, Option<String>)> {
    let r = s.read(topic, 0, from, 64 << 20).await.unwrap();
    let mut out = Vec::new();
    // Each read slice may hold several batches back to back.
    let batches = r.batches.iter().flat_map(|slice| {
        sluice_protocol::batch::batches(slice)
            .map(|(at, h)| slice.slice(at..at + h.size))
            .collect::<Vec<_>>()
    });
    for mut b in batches {
        let set = RecordBatchDecoder::decode(&mut b).unwrap();
        for rec in set.records {
            let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
            out.push((
                rec.offset,
                rec.key.as_ref().map(text).unwrap_or_default(),
                rec.value.as_ref().map(text),
            ));
        }
    }
    out
}

#[tokio::test]
async fn a_compacted_log_keeps_the_latest_record_of_each_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    compacted(
        &s,
        "c",
        &[
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "0"),
        ],
    )
    .await;
    // Five rounds, each one batch in another codec; round r writes keys
    // k{r} to k9, so every round's batch keeps its first record and loses
    // the rest: every codec's batches are rebuilt. Then one more batch.
    for (round, codec) in CODECS.into_iter().enumerate() {
        let keys: Vec<String> = (round..10).map(|k| format!("k{k}")).collect();
        let values: Vec<String> = (round..10).map(|k| format!("r{round}-k{k}")).collect();
        let batch: Vec<(&str, Option<&str>)> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .collect();
        s.append("c", 0, keyed(&batch, codec)).await.unwrap();
    }
    // Offsets 0-9, 10-18, 19-26, 27-33 and 34-39; then 40-42.
    s.append(
        "c",
        0,
        keyed(
            &[("k5", Some("late-5")), ("k3", None), ("k7", Some("late-7"))],
            Compression::Lz4,
        ),
    )
    .await
    .unwrap();
    // The log's last chunk is never cleaned (Kafka's active segment): a
    // last batch, so that all of the above can be.
    s.append("c", 0, keyed(&[("z", Some("end"))], Compression::None))
        .await
        .unwrap();
    assert_eq!(records(&s, "c", 0).await.len(), 44);

    assert_eq!(s.compact_logs().await.unwrap(), 43 - 10);
    let entry = |o: i64, k: &str, v: Option<&str>| (o, k.to_string(), v.map(str::to_string));
    let expected = vec![
        entry(0, "k0", Some("r0-k0")),
        entry(10, "k1", Some("r1-k1")),
        entry(19, "k2", Some("r2-k2")),
        entry(34, "k4", Some("r4-k4")),
        entry(36, "k6", Some("r4-k6")),
        entry(38, "k8", Some("r4-k8")),
        entry(39, "k9", Some("r4-k9")),
        entry(40, "k5", Some("late-5")),
        entry(41, "k3", None),
        entry(42, "k7", Some("late-7")),
        entry(43, "z", Some("end")),
    ];
    assert_eq!(records(&s, "c", 0).await, expected);
    // A read from inside a rebuilt batch gets that batch, and one from an
    // offset whose whole batch is gone starts at the next batch.
    assert_eq!(records(&s, "c", 12).await, expected[1..]);
    assert_eq!(records(&s, "c", 30).await, expected[3..]);
    assert_eq!(records(&s, "c", 41).await, expected[7..]);
    let end = s.offset_at("c", 0, LATEST).await.unwrap().offset;
    assert_eq!(end, 44, "offsets never move");
    assert_eq!(s.compact_logs().await.unwrap(), 0, "nothing new to clean");

    // That pass gave the tombstone's batch a delete horizon of now +
    // delete.retention.ms (0 here); a later pass drops it, once the log
    // has new records to clean: k0's newest record, then (so that it is no
    // longer the last chunk, and is mapped) k9's.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(s.compact_logs().await.unwrap(), 0, "no dirty records");
    let (a, _) = s
        .append(
            "c",
            0,
            keyed(&[("k0", Some("newest-0"))], Compression::Zstd),
        )
        .await
        .unwrap();
    assert_eq!(a.base_offset, 44);
    s.append(
        "c",
        0,
        keyed(&[("k9", Some("newest-9"))], Compression::Gzip),
    )
    .await
    .unwrap();
    assert_eq!(
        s.compact_logs().await.unwrap(),
        2,
        "k0's older record and k3's tombstone"
    );
    let got = records(&s, "c", 0).await;
    assert!(!got.iter().any(|(_, k, _)| k == "k3"), "{got:?}");
    assert_eq!(got.len(), 11, "k9's older record waits for the next pass");
    assert_eq!(
        got[got.len() - 2..],
        [
            entry(44, "k0", Some("newest-0")),
            entry(45, "k9", Some("newest-9"))
        ]
    );

    // Where the log was cleaned up to, and the log, survive a restart.
    let topic_id = s.topic("c").unwrap().id;
    s.shutdown().await;
    drop(s);
    let s = open(dir.path()).await;
    assert_eq!(
        s.catalog().cleaned_offset(topic_id, 0).await.unwrap(),
        Some(45),
        "up to the last chunk"
    );
    assert_eq!(records(&s, "c", 0).await, got);
    assert_eq!(s.compact_logs().await.unwrap(), 0);
    let (a, _) = s
        .append("c", 0, keyed(&[("k1", Some("after"))], Compression::None))
        .await
        .unwrap();
    assert_eq!(a.base_offset, 46);
    // The copied objects are collected (grace 0: mark, then delete).
    s.collect_objects().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.collect_objects().await.unwrap();
    assert_eq!(records(&s, "c", 0).await.len(), 12);
}

#[tokio::test]
async fn records_younger_than_the_minimum_lag_are_not_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    compacted(
        &s,
        "lag",
        &[
            ("min.cleanable.dirty.ratio", "0.01"),
            ("min.compaction.lag.ms", "3600000"),
        ],
    )
    .await;
    for v in ["a", "b", "c"] {
        s.append("lag", 0, keyed(&[("k", Some(v))], Compression::None))
            .await
            .unwrap();
    }
    assert_eq!(s.compact_logs().await.unwrap(), 0);
    assert_eq!(records(&s, "lag", 0).await.len(), 3);
}

#[tokio::test]
async fn the_dirty_ratio_decides_when_a_log_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    compacted(&s, "ratio", &[("min.cleanable.dirty.ratio", "0.5")]).await;
    let round = |tag: &'static str| {
        let keys: Vec<String> = (0..20).map(|k| format!("k{k}")).collect();
        let values: Vec<String> = (0..20).map(|k| format!("{tag}-{k}")).collect();
        keyed(
            &keys
                .iter()
                .zip(&values)
                .map(|(k, v)| (k.as_str(), Some(v.as_str())))
                .collect::<Vec<_>>(),
            Compression::None,
        )
    };
    let z = |v: &str| keyed(&[("z", Some(v))], Compression::None);
    // All dirty at first: compacted down to one round (z1, the log's last
    // chunk, is never cleaned).
    s.append("ratio", 0, round("a")).await.unwrap();
    s.append("ratio", 0, round("b")).await.unwrap();
    s.append("ratio", 0, z("z1")).await.unwrap();
    assert_eq!(s.compact_logs().await.unwrap(), 20);
    // A small dirty part (two one-record batches, a third of the bytes)
    // waits...
    s.append("ratio", 0, z("z2")).await.unwrap();
    assert_eq!(s.compact_logs().await.unwrap(), 0);
    // ...until it is half of them.
    s.append("ratio", 0, round("d")).await.unwrap();
    s.append("ratio", 0, z("z3")).await.unwrap();
    assert_eq!(s.compact_logs().await.unwrap(), 21, "round b and z1");
    let got = records(&s, "ratio", 0).await;
    assert_eq!(got.len(), 22);
    assert!(got
        .iter()
        .all(|(_, k, v)| k == "z" || v.as_deref().unwrap().starts_with("d-")));
}

#[tokio::test]
async fn records_without_a_key_go_when_a_topic_becomes_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.create_topic("mixed", 1, BTreeMap::new(), false)
        .await
        .unwrap();
    let now = sluice_storage::now_ms();
    s.append("mixed", 0, keyed(&[("k", Some("v"))], Compression::Gzip))
        .await
        .unwrap();
    s.append("mixed", 0, common::record_batch([b"no key".to_vec()], now))
        .await
        .unwrap();
    assert_eq!(s.compact_logs().await.unwrap(), 0, "not compacted yet");
    s.set_topic_configs(
        "mixed",
        configs(&[
            ("cleanup.policy", "compact"),
            ("min.cleanable.dirty.ratio", "0"),
        ]),
        false,
    )
    .await
    .unwrap();
    // The keyless record is in the log's last chunk, never cleaned (a
    // consumer at offset 1 has a record to step past to the end).
    assert_eq!(s.compact_logs().await.unwrap(), 0);
    assert_eq!(records(&s, "mixed", 0).await.len(), 2);
    // Once it is not the last, it goes.
    s.append("mixed", 0, keyed(&[("k", Some("w"))], Compression::None))
        .await
        .unwrap();
    assert_eq!(s.compact_logs().await.unwrap(), 1);
    assert_eq!(
        records(&s, "mixed", 0).await,
        vec![
            (0, "k".to_string(), Some("v".to_string())),
            (2, "k".to_string(), Some("w".to_string()))
        ]
    );
    let r = s.read("mixed", 0, 1, 1 << 20).await.unwrap();
    let next = sluice_protocol::batch::parse_header(&r.batches[0]).unwrap();
    assert_eq!((next.base_offset, next.record_count), (2, 1));
}

#[tokio::test]
async fn a_tombstone_is_kept_for_the_retention_after_its_first_cleaning_whatever_its_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    compacted(&s, "old", &[("min.cleanable.dirty.ratio", "0")]).await;
    // Mirrored from a year ago, say: the producer's timestamps are old.
    let year_ago = sluice_storage::now_ms() - 365 * 86_400_000;
    s.append(
        "old",
        0,
        keyed_at(
            &[("k", Some("v")), ("k", None)],
            Compression::Snappy,
            year_ago,
        ),
    )
    .await
    .unwrap();
    assert_eq!(s.compact_logs().await.unwrap(), 0, "the log's last chunk");
    for tag in ["a", "b", "c"] {
        s.append("old", 0, keyed(&[(tag, Some(tag))], Compression::None))
            .await
            .unwrap();
        s.compact_logs().await.unwrap();
    }
    let got = records(&s, "old", 0).await;
    assert_eq!(
        got.first(),
        Some(&(1, "k".to_string(), None)),
        "a day's delete.retention.ms runs from the first cleaning"
    );
    assert_eq!(got.len(), 4);
}

#[tokio::test]
async fn a_pass_cut_short_by_its_limits_keeps_every_latest_record_and_the_next_goes_on() {
    // A key map that holds one chunk's keys, sections of one chunk: every
    // pass maps one chunk, copies section by section, and stops there.
    let dir = tempfile::tempdir().unwrap();
    let limits = CompactionLimits {
        map_bytes: 1,
        section_bytes: 1,
        section_rows: 1,
    };
    let s = open_with(dir.path(), limits).await;
    compacted(&s, "cut", &[("min.cleanable.dirty.ratio", "0")]).await;
    // Six appends (six chunks) over keys a-d, overlapping.
    let mut latest: BTreeMap<String, (i64, String)> = BTreeMap::new();
    let mut offset = 0;
    for round in 0..6 {
        let keys: Vec<String> = (0..3)
            .map(|i| format!("{}", (b'a' + ((round + i) % 4) as u8) as char))
            .collect();
        let values: Vec<String> = keys.iter().map(|k| format!("{k}{round}")).collect();
        let batch: Vec<(&str, Option<&str>)> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .collect();
        s.append("cut", 0, keyed(&batch, Compression::Gzip))
            .await
            .unwrap();
        for (k, v) in keys.iter().zip(&values) {
            latest.insert(k.clone(), (offset, v.clone()));
            offset += 1;
        }
    }
    // A last chunk, so that the rounds can all be cleaned.
    s.append("cut", 0, keyed(&[("z", Some("z"))], Compression::None))
        .await
        .unwrap();
    latest.insert("z".into(), (18, "z".into()));
    let topic_id = s.topic("cut").unwrap().id;
    let mut passes = 0;
    let mut removed_total = 0;
    loop {
        let removed = s.compact_logs().await.unwrap();
        passes += 1;
        removed_total += removed;
        // Whatever a pass removed, each key's latest record is still there.
        let got = records(&s, "cut", 0).await;
        for (k, (o, v)) in &latest {
            assert!(
                got.contains(&(*o, k.clone(), Some(v.clone()))),
                "pass {passes} lost {k}@{o}: {got:?}"
            );
        }
        let cleaned = s.catalog().cleaned_offset(topic_id, 0).await.unwrap();
        if cleaned == Some(18) {
            break;
        }
        assert!(passes < 10, "no progress: cleaned to {cleaned:?}");
    }
    assert!(passes >= 6, "one chunk mapped per pass: {passes} passes");
    let got = records(&s, "cut", 0).await;
    let want: Vec<_> = {
        let mut v: Vec<_> = latest
            .iter()
            .map(|(k, (o, v))| (*o, k.clone(), Some(v.clone())))
            .collect();
        v.sort();
        v
    };
    assert_eq!(got, want);
    assert_eq!(removed_total, 18 - 4);
}

#[tokio::test]
async fn damaged_data_stops_a_pass_and_is_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    compacted(&s, "damaged", &[("min.cleanable.dirty.ratio", "0")]).await;
    for v in ["a", "b", "c"] {
        s.append("damaged", 0, keyed(&[("k", Some(v))], Compression::None))
            .await
            .unwrap();
    }
    let topic_id = s.topic("damaged").unwrap().id;
    let chunks = s.catalog().chunks_from(topic_id, 0, 0, 10).await.unwrap();
    let file = |c: &sluice_storage::catalog::ChunkRow| {
        dir.path()
            .join("objects")
            .join(sluice_storage::objects::object_path(c.object_id))
    };
    // A flipped bit in the first record batch's records: its CRC fails.
    let mut bytes = std::fs::read(file(&chunks[0])).unwrap();
    let last = chunks[0].byte_start as usize + chunks[0].byte_len as usize - 1;
    bytes[last] ^= 0x01;
    std::fs::write(file(&chunks[0]), &bytes).unwrap();
    assert_eq!(s.compact_logs().await.unwrap(), 0, "the pass stops");
    assert_eq!(
        s.catalog().chunks_from(topic_id, 0, 0, 10).await.unwrap(),
        chunks,
        "nothing swapped"
    );
    assert_eq!(s.catalog().cleaned_offset(topic_id, 0).await.unwrap(), None);
    // Repaired, and the second batch's base offset (not under its CRC)
    // damaged instead: the offsets no longer fit the index row.
    bytes[last] ^= 0x01;
    std::fs::write(file(&chunks[0]), &bytes).unwrap();
    let mut bytes = std::fs::read(file(&chunks[1])).unwrap();
    let at = chunks[1].byte_start as usize;
    bytes[at..at + 8].copy_from_slice(&7i64.to_be_bytes());
    std::fs::write(file(&chunks[1]), &bytes).unwrap();
    assert_eq!(s.compact_logs().await.unwrap(), 0);
    assert_eq!(
        s.catalog().chunks_from(topic_id, 0, 0, 10).await.unwrap(),
        chunks
    );
}
