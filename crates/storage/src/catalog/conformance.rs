//! The behaviour every catalog backend must show, run by the SQLite and
//! PostgreSQL test suites alike. It uses fresh random ids and names, so it
//! can run on a database other tests share.

use std::collections::BTreeMap;

use super::*;
use crate::error::StorageError;

fn chunk(topic_id: i64, partition: i32, base: i64, last: i64, ts: i64, object_id: i64) -> ChunkRow {
    ChunkRow {
        topic_id,
        partition,
        base_offset: base,
        last_offset: last,
        max_timestamp: ts,
        leader_epoch: 1,
        object_id,
        byte_start: base * 10,
        byte_len: (last - base + 1) * 10,
    }
}

fn object(id: i64, owner: &str, expires_ms: i64) -> ObjectRow {
    ObjectRow {
        id,
        path: format!("objects/{id:016x}"),
        owner: owner.into(),
        created_ms: 0,
        expires_ms,
    }
}

/// Registers `object` and commits `chunks` (at most one per partition) in
/// it under `leader_epoch`, which must succeed.
async fn commit_chunks(
    catalog: &dyn Catalog,
    object: &ObjectRow,
    leader_epoch: i32,
    chunks: &[ChunkRow],
) {
    catalog.register_object(object).await.unwrap();
    let c = Commit {
        object_id: object.id,
        object_size: 500,
        partitions: chunks
            .iter()
            .map(|&chunk| PartitionCommit {
                leader_epoch,
                chunk,
            })
            .collect(),
        producers: vec![],
        next_object: None,
    };
    assert_eq!(catalog.commit(&c).await.unwrap(), CommitOutcome::Committed);
}

/// Runs the whole suite; panics with a description on the first failure.
pub async fn run(catalog: &dyn Catalog) {
    let salt: i64 = rand::random::<u32>() as i64 * 1000;
    let name = format!("conformance-{salt}");
    groups_and_offsets(catalog, salt).await;
    tenancy_records(catalog, salt).await;
    let topic = TopicRow {
        id: salt + 1,
        name: name.clone(),
        uuid: [7; 16],
        partitions: 2,
        configs: BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
        created_ms: 42,
    };

    // Topics: create, a duplicate name is refused, list returns it whole.
    catalog
        .create_topic(&topic, "b0")
        .await
        .expect("create topic");
    let dup = TopicRow {
        id: salt + 2,
        ..topic.clone()
    };
    assert!(
        matches!(catalog.create_topic(&dup, "b0").await, Err(StorageError::TopicExists(n)) if n == name),
        "a second topic with the same name must be refused"
    );
    // Growing to the same count adds nothing.
    assert!(catalog
        .add_partitions(topic.id, 2, "b0")
        .await
        .unwrap()
        .is_empty());
    let listed: Vec<TopicRow> = catalog
        .list_topics()
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.id == topic.id)
        .collect();
    assert_eq!(
        listed,
        vec![topic.clone()],
        "list_topics returns the topic as created"
    );
    let added = catalog.add_partitions(topic.id, 3, "b0").await.unwrap();
    assert_eq!(
        added
            .iter()
            .map(|p| (p.partition, p.leader_epoch, p.next_offset))
            .collect::<Vec<_>>(),
        vec![(2, 1, 0)]
    );
    let first_epoch = EpochStart {
        leader_epoch: 1,
        start_offset: 0,
    };
    for p in [0, 2] {
        assert_eq!(
            catalog.epoch_starts(topic.id, p).await.unwrap(),
            vec![first_epoch],
            "a new partition's epoch 1 begins at 0"
        );
    }
    assert_eq!(
        catalog
            .list_topics()
            .await
            .unwrap()
            .iter()
            .find(|t| t.id == topic.id)
            .unwrap()
            .partitions,
        3
    );

    // Configs replace the stored set.
    let cfg = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
    catalog.set_topic_configs(topic.id, &cfg).await.unwrap();
    let t = catalog
        .list_topics()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == topic.id)
        .unwrap();
    assert_eq!(t.configs, cfg);

    // Taking over bumps the epoch.
    let parts = catalog.take_over(topic.id, "b1", None).await.unwrap();
    assert_eq!(parts.len(), 3);
    assert!(parts
        .iter()
        .all(|p| p.leader_epoch == 2 && p.next_offset == 0 && p.log_start == 0));

    // A commit with the right epoch and offset advances next_offset.
    let o1 = salt + 10;
    catalog
        .register_object(&object(o1, "b1", i64::MAX))
        .await
        .unwrap();
    let commit = Commit {
        object_id: o1,
        object_size: 100,
        partitions: vec![
            PartitionCommit {
                leader_epoch: 2,
                chunk: chunk(topic.id, 0, 0, 9, 100, o1),
            },
            PartitionCommit {
                leader_epoch: 2,
                chunk: chunk(topic.id, 1, 0, 4, 50, o1),
            },
        ],
        producers: vec![],
        next_object: Some(object(o1 + 1, "b1", i64::MAX)),
    };
    assert_eq!(
        catalog.commit(&commit).await.unwrap(),
        CommitOutcome::Committed
    );
    assert!(catalog.object_committed(o1).await.unwrap());
    assert!(
        !catalog.object_committed(o1 + 1).await.unwrap(),
        "next object is only prepared"
    );

    // Replaying it (same base offset) is fenced: offsets stay dense.
    let o2 = o1 + 1;
    let replay = Commit {
        object_id: o2,
        next_object: None,
        ..commit.clone()
    };
    assert_eq!(
        catalog.commit(&replay).await.unwrap(),
        CommitOutcome::Fenced(vec![(topic.id, 0), (topic.id, 1)])
    );
    // A stale epoch is fenced even at the right offset.
    let stale = Commit {
        object_id: o2,
        object_size: 10,
        partitions: vec![PartitionCommit {
            leader_epoch: 1,
            chunk: chunk(topic.id, 0, 10, 19, 200, o2),
        }],
        producers: vec![],
        next_object: None,
    };
    assert_eq!(
        catalog.commit(&stale).await.unwrap(),
        CommitOutcome::Fenced(vec![(topic.id, 0)])
    );
    // One fenced partition fences the commit, and only that partition is
    // named; the other does not move.
    let valid_p1 = PartitionCommit {
        leader_epoch: 2,
        chunk: chunk(topic.id, 1, 5, 9, 300, o2),
    };
    let mixed = Commit {
        partitions: vec![stale.partitions[0], valid_p1],
        ..stale.clone()
    };
    assert_eq!(
        catalog.commit(&mixed).await.unwrap(),
        CommitOutcome::Fenced(vec![(topic.id, 0)])
    );
    // An object that was never registered is refused, and nothing moves.
    let unregistered = Commit {
        object_id: salt + 99,
        partitions: vec![valid_p1],
        ..stale.clone()
    };
    assert!(catalog.commit(&unregistered).await.is_err());
    // A new leader takes over: the old epoch's commit now fails (and the
    // refused commits above left the offsets where they were).
    let parts = catalog.take_over(topic.id, "b2", None).await.unwrap();
    assert_eq!(parts[0].next_offset, 10);
    assert_eq!(parts[1].next_offset, 5);
    let old = Commit {
        partitions: vec![PartitionCommit {
            leader_epoch: 2,
            chunk: chunk(topic.id, 0, 10, 19, 200, o2),
        }],
        ..stale.clone()
    };
    assert_eq!(
        catalog.commit(&old).await.unwrap(),
        CommitOutcome::Fenced(vec![(topic.id, 0)])
    );
    let new = Commit {
        partitions: vec![PartitionCommit {
            leader_epoch: 3,
            chunk: chunk(topic.id, 0, 10, 19, 200, o2),
        }],
        ..stale
    };
    assert_eq!(
        catalog.commit(&new).await.unwrap(),
        CommitOutcome::Committed
    );

    // Index lookups.
    let c = catalog.chunks_from(topic.id, 0, 0, 10).await.unwrap();
    assert_eq!(
        c.iter().map(|c| c.base_offset).collect::<Vec<_>>(),
        vec![0, 10]
    );
    let c = catalog.chunks_from(topic.id, 0, 12, 10).await.unwrap();
    assert_eq!(
        c.iter().map(|c| c.base_offset).collect::<Vec<_>>(),
        vec![10]
    );
    let c = catalog.chunks_from(topic.id, 0, 9, 10).await.unwrap();
    assert_eq!(
        c.iter().map(|c| c.base_offset).collect::<Vec<_>>(),
        vec![0, 10],
        "from a chunk's last offset"
    );
    let c = catalog.chunks_from(topic.id, 0, 10, 1).await.unwrap();
    assert_eq!(
        c.iter().map(|c| c.base_offset).collect::<Vec<_>>(),
        vec![10],
        "from a chunk's base offset, one chunk"
    );
    assert!(catalog
        .chunks_from(topic.id, 0, 20, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        catalog
            .chunk_at_time(topic.id, 0, 150)
            .await
            .unwrap()
            .map(|c| c.base_offset),
        Some(10)
    );
    assert_eq!(
        catalog
            .chunk_at_time(topic.id, 0, 0)
            .await
            .unwrap()
            .map(|c| c.base_offset),
        Some(0)
    );
    assert_eq!(catalog.chunk_at_time(topic.id, 0, 201).await.unwrap(), None);
    assert_eq!(
        catalog
            .chunk_with_max_time(topic.id, 0)
            .await
            .unwrap()
            .map(|c| c.base_offset),
        Some(10)
    );
    assert_eq!(catalog.partition_bytes(topic.id, 0).await.unwrap(), 200);
    assert_eq!(catalog.partition_bytes(topic.id, 1).await.unwrap(), 50);
    let by_topic = catalog.bytes_by_topic().await.unwrap();
    assert!(
        by_topic.contains(&(topic.name.clone(), 250)),
        "{by_topic:?}"
    );

    // Retention: only the current leader advances the log start.
    assert!(!catalog.advance_log_start(topic.id, 0, 2, 10).await.unwrap());
    assert!(catalog.advance_log_start(topic.id, 0, 3, 10).await.unwrap());
    assert!(
        !catalog.advance_log_start(topic.id, 0, 3, 10).await.unwrap(),
        "log start only moves forward"
    );
    assert!(
        !catalog.advance_log_start(topic.id, 0, 3, 21).await.unwrap(),
        "never past next_offset"
    );
    let c = catalog.chunks_from(topic.id, 0, 0, 10).await.unwrap();
    assert_eq!(
        c.iter().map(|c| c.base_offset).collect::<Vec<_>>(),
        vec![10]
    );
    let parts = catalog.take_over(topic.id, "b3", Some(0)).await.unwrap();
    assert_eq!(parts.len(), 1, "taking over one partition touches only it");
    assert_eq!((parts[0].log_start, parts[0].leader_epoch), (10, 4));

    // Each epoch's start: the next offset at each takeover. An epoch that
    // led no records (the next began where it did) is forgotten, as
    // Kafka's epoch cache forgets it, and so is one that ended before the
    // log start (partition 0's epoch 2 ended at 10, where retention moved
    // the start).
    let starts = |p: i32| async move {
        catalog
            .epoch_starts(topic.id, p)
            .await
            .unwrap()
            .iter()
            .map(|e| (e.leader_epoch, e.start_offset))
            .collect::<Vec<_>>()
    };
    assert_eq!(starts(0).await, vec![(3, 10), (4, 20)]);
    assert_eq!(starts(1).await, vec![(2, 0), (3, 5)]);
    assert_eq!(
        starts(2).await,
        vec![(3, 0)],
        "a partition added later, taken over twice without records"
    );

    // Collection: expired prepared objects, and committed objects with no
    // chunk left once the grace period has passed.
    let orphan = salt + 20;
    catalog
        .register_object(&object(orphan, "crashed", 5))
        .await
        .unwrap();
    let found = catalog.collectable_objects(10, 1_000).await.unwrap();
    assert!(
        found.iter().any(|o| o.id == orphan),
        "expired prepared object is collectable"
    );
    // Once claimed for collection, a late flush can no longer commit into
    // it (partition 0 would otherwise take this chunk at offset 20).
    let late = Commit {
        object_id: orphan,
        object_size: 10,
        partitions: vec![PartitionCommit {
            leader_epoch: 4,
            chunk: chunk(topic.id, 0, 20, 24, 400, orphan),
        }],
        producers: vec![],
        next_object: None,
    };
    assert!(matches!(
        catalog.commit(&late).await,
        Err(StorageError::ObjectClaimed(id)) if id == orphan
    ));
    assert!(!catalog.object_committed(orphan).await.unwrap());
    assert!(catalog
        .chunks_from(topic.id, 0, 20, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        !found.iter().any(|o| o.id == o1 || o.id == o2),
        "objects with chunks stay"
    );
    // Retention removed o1's chunk of partition 0, but partition 1 still uses it.
    catalog.delete_topic(topic.id).await.unwrap();
    assert!(
        catalog.epoch_starts(topic.id, 0).await.unwrap().is_empty(),
        "a deleted topic's epochs go with it"
    );
    assert!(catalog
        .list_topics()
        .await
        .unwrap()
        .iter()
        .all(|t| t.id != topic.id));
    assert!(catalog
        .chunks_from(topic.id, 1, 0, 10)
        .await
        .unwrap()
        .is_empty());
    let now = crate::now_ms();
    let first = catalog.collectable_objects(now, 1_000).await.unwrap();
    assert!(
        !first.iter().any(|o| o.id == o1),
        "grace period starts when an object loses its last chunk"
    );
    let later = catalog
        .collectable_objects(now + 2_000, 1_000)
        .await
        .unwrap();
    assert!(later.iter().any(|o| o.id == o1) && later.iter().any(|o| o.id == o2));
    for o in &later {
        if o.id > salt && o.id < salt + 1000 {
            catalog.forget_object(o.id).await.unwrap();
        }
    }
    let after = catalog
        .collectable_objects(now + 2_000, 1_000)
        .await
        .unwrap();
    assert!(!after.iter().any(|o| o.id > salt && o.id < salt + 1000));

    producer_ids(catalog).await;
    producer_state(catalog, salt + 500).await;
    merges(catalog, salt + 700).await;
    cleaned_offsets(catalog, salt + 800).await;
}

/// Compaction's bookkeeping: the bytes not cleaned yet, and where a
/// partition was cleaned up to, kept per partition and gone with the topic.
async fn cleaned_offsets(catalog: &dyn Catalog, salt: i64) {
    let topic = TopicRow {
        id: salt + 1,
        name: format!("cleaned-{salt}"),
        uuid: [5; 16],
        partitions: 2,
        configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        created_ms: 0,
    };
    catalog.create_topic(&topic, "c0").await.unwrap();
    let epoch = catalog.take_over(topic.id, "c1", None).await.unwrap()[0].leader_epoch;
    // One chunk per partition and commit.
    let commits = [
        (
            salt + 10,
            vec![
                chunk(topic.id, 0, 0, 9, 100, salt + 10),
                chunk(topic.id, 1, 0, 4, 100, salt + 10),
            ],
        ),
        (salt + 11, vec![chunk(topic.id, 0, 10, 19, 200, salt + 11)]),
    ];
    for (id, chunks) in commits {
        commit_chunks(catalog, &object(id, "c1", i64::MAX), epoch, &chunks).await;
    }
    // Each chunk is 10 bytes per offset.
    let from = |p, o| catalog.partition_bytes_from(topic.id, p, o);
    assert_eq!(from(0, 0).await.unwrap(), 200);
    assert_eq!(from(0, 10).await.unwrap(), 100, "chunks starting at 10 on");
    assert_eq!(from(0, 11).await.unwrap(), 0);
    assert_eq!(from(1, 0).await.unwrap(), 50, "per partition");

    assert_eq!(catalog.cleaned_offset(topic.id, 0).await.unwrap(), None);
    catalog.set_cleaned_offset(topic.id, 0, 10).await.unwrap();
    catalog.set_cleaned_offset(topic.id, 0, 20).await.unwrap();
    catalog.set_cleaned_offset(topic.id, 1, 5).await.unwrap();
    catalog.set_cleaned_offset(topic.id, 0, 15).await.unwrap();
    assert_eq!(
        catalog.cleaned_offset(topic.id, 0).await.unwrap(),
        Some(20),
        "never backwards"
    );
    assert_eq!(catalog.cleaned_offset(topic.id, 1).await.unwrap(), Some(5));
    catalog.set_cleaned_offset(topic.id, 7, 5).await.unwrap();
    assert_eq!(
        catalog.cleaned_offset(topic.id, 7).await.unwrap(),
        None,
        "no row for a partition that does not exist"
    );
    catalog.delete_topic(topic.id).await.unwrap();
    assert_eq!(catalog.cleaned_offset(topic.id, 0).await.unwrap(), None);
    catalog.set_cleaned_offset(topic.id, 1, 9).await.unwrap();
    assert_eq!(
        catalog.cleaned_offset(topic.id, 1).await.unwrap(),
        None,
        "nor for a deleted topic"
    );
}

/// Merges: small objects are listed oldest first, their chunks found, and
/// a merge swaps the rows only if every replaced row is still there.
async fn merges(catalog: &dyn Catalog, salt: i64) {
    let topic = TopicRow {
        id: salt + 1,
        name: format!("merges-{salt}"),
        uuid: [9; 16],
        partitions: 2,
        configs: BTreeMap::new(),
        created_ms: 0,
    };
    catalog.create_topic(&topic, "m0").await.unwrap();
    let epoch = catalog.take_over(topic.id, "m1", None).await.unwrap()[0].leader_epoch;
    // Three commits: partition 0 in each, partition 1 in the second.
    let (o1, o2, o3) = (salt + 10, salt + 11, salt + 12);
    let commits = [
        (o1, vec![chunk(topic.id, 0, 0, 9, 100, o1)]),
        (
            o2,
            vec![
                chunk(topic.id, 0, 10, 19, 300, o2),
                chunk(topic.id, 1, 0, 4, 200, o2),
            ],
        ),
        (o3, vec![chunk(topic.id, 0, 20, 24, 150, o3)]),
    ];
    for (id, chunks) in &commits {
        let registered = ObjectRow {
            created_ms: *id,
            ..object(*id, "m1", i64::MAX)
        };
        commit_chunks(catalog, &registered, epoch, chunks).await;
    }
    let small: Vec<i64> = catalog
        .small_objects(1000, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.id >= o1 && o.id <= o3)
        .map(|o| o.id)
        .collect();
    assert_eq!(
        small,
        vec![o1, o2, o3],
        "committed small objects, oldest first"
    );
    assert!(
        !catalog
            .small_objects(500, 100_000)
            .await
            .unwrap()
            .iter()
            .any(|o| o.id == o1),
        "only objects under the size"
    );
    let found = catalog.chunks_in_objects(&[o1, o2]).await.unwrap();
    assert_eq!(
        found
            .iter()
            .map(|c| (c.partition, c.base_offset, c.object_id))
            .collect::<Vec<_>>(),
        vec![(0, 0, o1), (0, 10, o2), (1, 0, o2)]
    );

    // Merge o1 and o2: partition 0's two chunks become one.
    let merged_id = salt + 20;
    catalog
        .register_object(&object(merged_id, "m1", i64::MAX))
        .await
        .unwrap();
    let merge = Merge {
        object_id: merged_id,
        object_size: 600,
        replaced: found.clone(),
        merged: vec![
            ChunkRow {
                byte_start: 0,
                byte_len: 200,
                max_timestamp: 300,
                ..chunk(topic.id, 0, 0, 19, 300, merged_id)
            },
            ChunkRow {
                byte_start: 200,
                ..chunk(topic.id, 1, 0, 4, 200, merged_id)
            },
        ],
    };
    assert!(catalog.merge_chunks(&merge).await.unwrap());
    assert!(catalog.object_committed(merged_id).await.unwrap());
    assert!(
        !catalog
            .small_objects(1000, 100_000)
            .await
            .unwrap()
            .iter()
            .any(|o| o.id == merged_id),
        "a merge's own object is not merged again"
    );
    assert!(
        !catalog
            .small_objects(1000, 100_000)
            .await
            .unwrap()
            .iter()
            .any(|o| o.id == o1 || o.id == o2),
        "nor are objects left without chunks"
    );
    let p0 = catalog.chunks_from(topic.id, 0, 12, 10).await.unwrap();
    assert_eq!(
        p0.iter()
            .map(|c| (c.base_offset, c.last_offset, c.object_id))
            .collect::<Vec<_>>(),
        vec![(0, 19, merged_id), (20, 24, o3)],
        "the merged chunk holds offset 12, then the next one follows"
    );
    assert_eq!(
        catalog.partition_bytes(topic.id, 0).await.unwrap(),
        200 + 50,
        "the index counts the merged bytes"
    );
    assert!(catalog
        .chunks_in_objects(&[o1, o2])
        .await
        .unwrap()
        .is_empty());

    // The same merge again: its rows are gone, so nothing changes, and its
    // object stays prepared.
    let again = salt + 21;
    catalog
        .register_object(&object(again, "m1", i64::MAX))
        .await
        .unwrap();
    let stale = Merge {
        object_id: again,
        merged: merge
            .merged
            .iter()
            .map(|c| ChunkRow {
                object_id: again,
                ..*c
            })
            .collect(),
        ..merge.clone()
    };
    assert!(!catalog.merge_chunks(&stale).await.unwrap());
    assert!(!catalog.object_committed(again).await.unwrap());
    assert_eq!(
        catalog.chunks_from(topic.id, 0, 0, 10).await.unwrap()[0].object_id,
        merged_id
    );
    // A merge whose rows are there but whose object is not prepared (it
    // expired and was claimed) changes nothing either.
    let unregistered = Merge {
        object_id: salt + 22,
        replaced: catalog.chunks_in_objects(&[o3]).await.unwrap(),
        merged: vec![chunk(topic.id, 0, 20, 24, 150, salt + 22)],
        object_size: 50,
    };
    assert!(!catalog.merge_chunks(&unregistered).await.unwrap());
    assert_eq!(
        catalog.chunks_in_objects(&[o3]).await.unwrap().len(),
        1,
        "rolled back"
    );
    catalog.delete_topic(topic.id).await.unwrap();

    // More rows than one statement takes, and retention removed one of
    // them (in the last statement's group) after the merge read them: the
    // groups already deleted are rolled back too.
    let wide = TopicRow {
        id: salt + 2,
        name: format!("merges-wide-{salt}"),
        partitions: 70,
        ..topic.clone()
    };
    catalog.create_topic(&wide, "m0").await.unwrap();
    let epoch = catalog.take_over(wide.id, "m1", None).await.unwrap()[0].leader_epoch;
    let ow = salt + 30;
    catalog
        .register_object(&object(ow, "m1", i64::MAX))
        .await
        .unwrap();
    let c = Commit {
        object_id: ow,
        object_size: 700,
        partitions: (0..70)
            .map(|p| PartitionCommit {
                leader_epoch: epoch,
                chunk: chunk(wide.id, p, 0, 0, 10, ow),
            })
            .collect(),
        producers: vec![],
        next_object: None,
    };
    assert_eq!(catalog.commit(&c).await.unwrap(), CommitOutcome::Committed);
    let rows = catalog.chunks_in_objects(&[ow]).await.unwrap();
    assert_eq!(rows.len(), 70);
    assert!(catalog
        .advance_log_start(wide.id, 69, epoch, 1)
        .await
        .unwrap());
    let om = salt + 31;
    catalog
        .register_object(&object(om, "m1", i64::MAX))
        .await
        .unwrap();
    let late = Merge {
        object_id: om,
        object_size: 700,
        merged: rows
            .iter()
            .map(|c| ChunkRow {
                object_id: om,
                ..*c
            })
            .collect(),
        replaced: rows,
    };
    assert!(!catalog.merge_chunks(&late).await.unwrap());
    assert_eq!(catalog.chunks_in_objects(&[ow]).await.unwrap().len(), 69);
    assert!(catalog.chunks_in_objects(&[om]).await.unwrap().is_empty());
    catalog.delete_topic(wide.id).await.unwrap();
}

/// InitProducerId: fresh ids are unique; KIP-360 bumps keep the id.
async fn producer_ids(catalog: &dyn Catalog) {
    let a = catalog.init_producer_id(None).await.unwrap();
    let b = catalog.init_producer_id(None).await.unwrap();
    assert_eq!((a.epoch, b.epoch), (0, 0));
    assert!(
        a.producer_id >= 0 && b.producer_id > a.producer_id,
        "{a:?} {b:?}"
    );

    let bumped = catalog.init_producer_id(Some(a)).await.unwrap();
    assert_eq!(
        bumped,
        ProducerIdAndEpoch {
            producer_id: a.producer_id,
            epoch: 1
        }
    );
    assert_eq!(
        catalog.init_producer_id(Some(a)).await.unwrap(),
        bumped,
        "a retry of the bump returns the same epoch"
    );
    let twice = catalog.init_producer_id(Some(bumped)).await.unwrap();
    assert_eq!(twice.epoch, 2);
    assert!(
        matches!(
            catalog.init_producer_id(Some(a)).await,
            Err(StorageError::ProducerFenced {
                epoch: 0,
                latest: 2,
                ..
            })
        ),
        "an epoch older than the one before the latest is fenced"
    );
    // An epoch never handed out, or an unknown id: a new id, as Kafka does
    // for producers without a transactional id.
    let unknown = catalog
        .init_producer_id(Some(ProducerIdAndEpoch {
            producer_id: i64::MAX - 7,
            epoch: 3,
        }))
        .await
        .unwrap();
    assert!(unknown.producer_id > b.producer_id && unknown.epoch == 0);
    let ahead = catalog
        .init_producer_id(Some(ProducerIdAndEpoch {
            producer_id: b.producer_id,
            epoch: 9,
        }))
        .await
        .unwrap();
    assert!(ahead.producer_id > unknown.producer_id && ahead.epoch == 0);
}

/// Producer state is upserted with the commit, never by a fenced one, is
/// read back per partition, and goes with its topic.
async fn producer_state(catalog: &dyn Catalog, salt: i64) {
    let topic = TopicRow {
        id: salt,
        name: format!("conformance-producers-{salt}"),
        uuid: [9; 16],
        partitions: 2,
        configs: BTreeMap::new(),
        created_ms: 0,
    };
    catalog.create_topic(&topic, "b0").await.unwrap();
    let batch = |first_seq, base_offset| ProducerBatch {
        first_seq,
        last_seq: first_seq + 4,
        base_offset,
        last_offset: base_offset + 4,
    };
    let state =
        |partition, producer_id, producer_epoch, batches: Vec<ProducerBatch>| ProducerStateRow {
            topic_id: topic.id,
            partition,
            producer_id,
            producer_epoch,
            batches,
            last_timestamp: 1_000 + producer_id,
        };
    let commit = |object_id, partition, base, producers| Commit {
        object_id,
        object_size: 10,
        partitions: vec![PartitionCommit {
            leader_epoch: 1,
            chunk: chunk(topic.id, partition, base, base + 4, 5, object_id),
        }],
        producers,
        next_object: None,
    };
    for o in [salt + 1, salt + 2, salt + 3, salt + 4] {
        catalog
            .register_object(&object(o, "b0", i64::MAX))
            .await
            .unwrap();
    }
    let first = vec![
        state(0, 7, 0, vec![batch(0, 0)]),
        state(0, 8, 2, vec![batch(0, 0)]),
    ];
    assert_eq!(
        catalog
            .commit(&commit(salt + 1, 0, 0, first.clone()))
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(
        catalog.producer_states(topic.id, None).await.unwrap(),
        first
    );
    // The next commit replaces producer 7's row and leaves producer 8's.
    let second = state(0, 7, 0, vec![batch(0, 0), batch(5, 5)]);
    assert_eq!(
        catalog
            .commit(&commit(salt + 2, 0, 5, vec![second.clone()]))
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
    // A fenced commit writes no producer state.
    let fenced = state(0, 7, 1, vec![batch(0, 10)]);
    assert_eq!(
        catalog
            .commit(&commit(salt + 3, 0, 0, vec![fenced]))
            .await
            .unwrap(),
        CommitOutcome::Fenced(vec![(topic.id, 0)])
    );
    let other = state(1, 7, 0, vec![batch(0, 0)]);
    assert_eq!(
        catalog
            .commit(&commit(salt + 4, 1, 0, vec![other.clone()]))
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(
        catalog.producer_states(topic.id, Some(0)).await.unwrap(),
        vec![second.clone(), first[1].clone()]
    );
    assert_eq!(
        catalog.producer_states(topic.id, None).await.unwrap(),
        vec![second, first[1].clone(), other.clone()]
    );
    assert_eq!(
        catalog.producer_states(topic.id, Some(1)).await.unwrap(),
        vec![other.clone()]
    );
    // Expiry forgets producers of one partition whose last write is older
    // than the cut-off: 7 (1007) goes, 8 (1008) and partition 1's 7 stay.
    catalog
        .forget_producers(topic.id, 0, &[8, 7], 1_008)
        .await
        .unwrap();
    assert_eq!(
        catalog.producer_states(topic.id, None).await.unwrap(),
        vec![first[1].clone(), other]
    );
    catalog.delete_topic(topic.id).await.unwrap();
    assert!(catalog
        .producer_states(topic.id, None)
        .await
        .unwrap()
        .is_empty());
}

/// Groups and committed offsets: commits replace earlier ones per
/// partition, survive in the catalog, and go with their group or topic.
async fn groups_and_offsets(catalog: &dyn Catalog, salt: i64) {
    let group = GroupRow {
        group_id: format!("group-{salt}"),
        protocol_type: "consumer".into(),
        created_ms: 5,
    };
    let topic = TopicRow {
        id: salt + 500,
        name: format!("offsets-{salt}"),
        uuid: [3; 16],
        partitions: 2,
        configs: BTreeMap::new(),
        created_ms: 1,
    };
    catalog.create_topic(&topic, "b0").await.unwrap();
    let offset = |partition, offset, metadata: Option<&str>| OffsetRow {
        topic: topic.name.clone(),
        partition,
        offset,
        leader_epoch: 1,
        metadata: metadata.map(str::to_string),
        commit_ms: 9,
    };
    catalog
        .commit_offsets(&group, &[offset(0, 10, Some("m")), offset(1, 20, None)])
        .await
        .unwrap();
    catalog
        .commit_offsets(&group, &[offset(0, 15, None)])
        .await
        .unwrap();
    assert_eq!(
        catalog.group_offsets(&group.group_id).await.unwrap(),
        vec![offset(0, 15, None), offset(1, 20, None)],
        "a later commit replaces the earlier one of the same partition"
    );
    let listed = catalog.list_groups().await.unwrap();
    assert!(
        listed.contains(&group),
        "committing offsets records the group"
    );
    assert!(catalog.group_exists(&group.group_id).await.unwrap());
    assert!(!catalog.group_exists("no-such-group").await.unwrap());
    // Saving a known group again changes nothing.
    catalog
        .save_group(&GroupRow {
            created_ms: 99,
            ..group.clone()
        })
        .await
        .unwrap();
    assert!(catalog.list_groups().await.unwrap().contains(&group));

    catalog
        .delete_offsets(&group.group_id, &[(topic.name.clone(), 1)])
        .await
        .unwrap();
    assert_eq!(
        catalog.group_offsets(&group.group_id).await.unwrap(),
        vec![offset(0, 15, None)]
    );
    // Deleting the topic removes its offsets but not the group.
    catalog.delete_topic(topic.id).await.unwrap();
    assert!(catalog
        .group_offsets(&group.group_id)
        .await
        .unwrap()
        .is_empty());
    // Membership snapshots replace each other and go with their group.
    catalog
        .save_group_state(&group.group_id, "one", 1)
        .await
        .unwrap();
    catalog
        .save_group_state(&group.group_id, "two", 2)
        .await
        .unwrap();
    let states = catalog.group_states().await.unwrap();
    assert!(states.contains(&(group.group_id.clone(), "two".to_string())));
    assert!(!states.contains(&(group.group_id.clone(), "one".to_string())));
    assert!(catalog.delete_group(&group.group_id).await.unwrap());
    assert!(!catalog.delete_group(&group.group_id).await.unwrap());
    assert!(!catalog
        .group_states()
        .await
        .unwrap()
        .iter()
        .any(|(g, _)| *g == group.group_id));
    assert!(!catalog
        .list_groups()
        .await
        .unwrap()
        .iter()
        .any(|g| g.group_id == group.group_id));
}

async fn tenancy_records(catalog: &dyn Catalog, salt: i64) {
    let tenant = TenantRow {
        name: format!("tenant-{salt}"),
        plan: "basic-0".into(),
        created_ms: 3,
    };
    let other = TenantRow {
        name: format!("other-{salt}"),
        ..tenant.clone()
    };
    assert!(catalog.create_tenant(&tenant).await.unwrap());
    assert!(catalog.create_tenant(&other).await.unwrap());
    assert!(
        !catalog.create_tenant(&tenant).await.unwrap(),
        "a taken tenant name must be refused"
    );
    assert!(catalog
        .set_tenant_plan(&tenant.name, "basic-1")
        .await
        .unwrap());
    assert!(!catalog.set_tenant_plan("nobody", "basic-1").await.unwrap());
    let listed = catalog.list_tenants().await.unwrap();
    assert!(listed.contains(&TenantRow {
        plan: "basic-1".into(),
        ..tenant.clone()
    }));

    let cred = CredentialRow {
        username: format!("user-{salt}"),
        tenant: tenant.name.clone(),
        secret: "s1".into(),
        created_ms: 4,
    };
    assert!(catalog.save_credential(&cred).await.unwrap());
    let rotated = CredentialRow {
        secret: "s2".into(),
        ..cred.clone()
    };
    assert!(catalog.save_credential(&rotated).await.unwrap());
    assert!(
        !catalog
            .save_credential(&CredentialRow {
                tenant: other.name.clone(),
                ..cred.clone()
            })
            .await
            .unwrap(),
        "a username belongs to one tenant"
    );
    assert!(
        !catalog
            .save_credential(&CredentialRow {
                username: format!("orphan-{salt}"),
                tenant: "nobody".into(),
                ..cred.clone()
            })
            .await
            .unwrap(),
        "credentials need a live tenant"
    );
    let creds = catalog.list_credentials().await.unwrap();
    assert!(creds.contains(&rotated), "rotation replaces the secret");
    assert!(!creds.iter().any(|c| c.username.starts_with("orphan-")));

    let acl = |op: i8| AclRow {
        resource_type: 2,
        resource_name: format!("{}.", tenant.name),
        pattern_type: 4,
        principal: format!("User:{}", cred.username),
        host: "*".into(),
        operation: op,
        permission: 3,
    };
    catalog.add_acls(&[acl(3), acl(4)]).await.unwrap();
    catalog.add_acls(&[acl(3)]).await.unwrap();
    let mine = |acls: Vec<AclRow>| {
        acls.into_iter()
            .filter(|a| a.principal == acl(3).principal)
            .collect::<Vec<_>>()
    };
    assert_eq!(mine(catalog.list_acls().await.unwrap()).len(), 2);
    assert_eq!(catalog.delete_acls(&[acl(3), acl(5)]).await.unwrap(), 1);
    assert_eq!(mine(catalog.list_acls().await.unwrap()), vec![acl(4)]);
    catalog.delete_acls(&[acl(4)]).await.unwrap();

    let token = TokenRow {
        id: format!("tok-{salt}"),
        tenant: tenant.name.clone(),
        hash: format!("{salt:064x}"),
        created_ms: 1,
    };
    assert!(catalog.save_token(&token).await.unwrap());
    assert!(
        !catalog
            .save_token(&TokenRow {
                id: format!("orphan-{salt}"),
                tenant: "nobody".into(),
                hash: format!("{:064x}", salt + 1),
                ..token.clone()
            })
            .await
            .unwrap(),
        "tokens need a live tenant"
    );
    assert!(catalog.list_tokens().await.unwrap().contains(&token));
    assert!(catalog.delete_token(&token.id).await.unwrap());
    assert!(!catalog.delete_token(&token.id).await.unwrap());
    assert!(catalog.save_token(&token).await.unwrap());

    assert!(catalog.delete_tenant(&tenant.name).await.unwrap());
    assert!(
        !catalog
            .list_tokens()
            .await
            .unwrap()
            .iter()
            .any(|t| t.tenant == tenant.name),
        "a tenant's tokens go with it"
    );
    assert!(!catalog.delete_tenant(&tenant.name).await.unwrap());
    assert!(
        !catalog
            .list_credentials()
            .await
            .unwrap()
            .iter()
            .any(|c| c.tenant == tenant.name),
        "a tenant's credentials go with it"
    );
    assert!(catalog.delete_tenant(&other.name).await.unwrap());
}
