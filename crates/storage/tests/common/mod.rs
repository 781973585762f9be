//! Shared by the storage tests: record batches built by hand (magic 2,
//! uncompressed), so the tests need no Kafka client library, and batches
//! in any codec through kafka-protocol's encoder.
// Each test crate uses some of these.
#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One record for [`encode`]: CreateTime, no producer; `offset` is its
/// place in its batch.
pub fn record(offset: i64, timestamp: i64, key: Option<Bytes>, value: Option<Bytes>) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        // Consecutive, or the encoder starts a new batch per record.
        sequence: offset as i32,
        timestamp,
        key,
        value,
        headers: Default::default(),
    }
}

/// `records` as one batch (magic 2) compressed with `compression`.
pub fn encode(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

/// A valid record batch with one record per value, all stamped `timestamp`.
pub fn record_batch(values: impl IntoIterator<Item = Vec<u8>>, timestamp: i64) -> Bytes {
    let mut records = BytesMut::new();
    let mut n = 0i32;
    for (i, value) in values.into_iter().enumerate() {
        let mut r = BytesMut::new();
        r.put_i8(0); // attributes
        put_varint(&mut r, 0); // timestamp delta
        put_varint(&mut r, i as i64); // offset delta
        put_varint(&mut r, -1); // key
        put_varint(&mut r, value.len() as i64);
        r.put_slice(&value);
        put_varint(&mut r, 0); // headers
        put_varint(&mut records, r.len() as i64);
        records.put_slice(&r);
        n += 1;
    }
    let mut body = BytesMut::new();
    body.put_i16(0); // attributes
    body.put_i32(n - 1);
    body.put_i64(timestamp);
    body.put_i64(timestamp);
    body.put_i64(-1);
    body.put_i16(-1);
    body.put_i32(-1);
    body.put_i32(n);
    body.put_slice(&records);
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32((4 + 1 + 4 + body.len()) as i32);
    b.put_i32(0);
    b.put_i8(2);
    b.put_u32(crc32c::crc32c(&body));
    b.put_slice(&body);
    b.freeze()
}

fn put_varint(b: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        b.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    b.put_u8(z as u8);
}
