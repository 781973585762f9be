//! The layout of the objects a group commit writes: batches grouped by
//! partition, then a footer that indexes them (see the parent module).

use bytes::{BufMut, Bytes, BytesMut};

const MAGIC: &[u8; 4] = b"SLC1";

/// One partition's bytes in an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FooterEntry {
    pub topic_id: i64,
    pub partition: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub byte_start: u64,
    pub byte_len: u64,
}

/// Builds an object: append each partition's batches, then `finish`.
#[derive(Default)]
pub struct ObjectBuilder {
    body: BytesMut,
    entries: Vec<FooterEntry>,
}

impl ObjectBuilder {
    pub fn with_capacity(bytes: usize) -> Self {
        ObjectBuilder {
            body: BytesMut::with_capacity(bytes + 1024),
            entries: Vec::new(),
        }
    }

    /// Bytes written so far: where the next batch or chunk starts.
    pub fn position(&self) -> usize {
        self.body.len()
    }

    /// Copies one batch into the object and returns its bytes there, so
    /// the caller can stamp offsets without another copy.
    pub fn push_batch(&mut self, batch: &[u8]) -> &mut [u8] {
        let start = self.body.len();
        self.body.put_slice(batch);
        &mut self.body[start..]
    }

    /// Records the batches pushed since `start` as one partition's chunk;
    /// returns its byte range.
    pub fn end_chunk(
        &mut self,
        start: usize,
        topic_id: i64,
        partition: i32,
        base_offset: i64,
        last_offset: i64,
    ) -> (u64, u64) {
        let len = (self.body.len() - start) as u64;
        self.entries.push(FooterEntry {
            topic_id,
            partition,
            base_offset,
            last_offset,
            byte_start: start as u64,
            byte_len: len,
        });
        (start as u64, len)
    }

    /// Appends one partition's consecutive batches as they are; returns the
    /// byte range.
    pub fn push_chunk<'a>(
        &mut self,
        topic_id: i64,
        partition: i32,
        base_offset: i64,
        last_offset: i64,
        batches: impl IntoIterator<Item = &'a [u8]>,
    ) -> (u64, u64) {
        let start = self.position();
        for b in batches {
            self.push_batch(b);
        }
        self.end_chunk(start, topic_id, partition, base_offset, last_offset)
    }

    /// Appends the footer and returns the object's bytes.
    pub fn finish(mut self) -> Bytes {
        let footer_start = self.body.len();
        self.body.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            self.body.put_i64(e.topic_id);
            self.body.put_i32(e.partition);
            self.body.put_i64(e.base_offset);
            self.body.put_i64(e.last_offset);
            self.body.put_u64(e.byte_start);
            self.body.put_u64(e.byte_len);
        }
        let footer_len = (self.body.len() - footer_start) as u32;
        self.body.put_u32(footer_len);
        let crc = crc32c::crc32c(&self.body);
        self.body.put_u32(crc);
        self.body.put_slice(MAGIC);
        self.body.freeze()
    }
}

/// Checks an object's checksum and returns its footer.
pub fn read_footer(object: &[u8]) -> std::result::Result<Vec<FooterEntry>, String> {
    use bytes::Buf;
    if object.len() < 12 || &object[object.len() - 4..] != MAGIC {
        return Err("missing object magic".into());
    }
    let end = object.len() - 8;
    let mut tail = &object[end..];
    let crc = tail.get_u32();
    if crc32c::crc32c(&object[..end]) != crc {
        return Err("object checksum mismatch".into());
    }
    let footer_len =
        u32::from_be_bytes(object[end - 4..end].try_into().map_err(|_| "short")?) as usize;
    let footer_start = (end - 4)
        .checked_sub(footer_len)
        .ok_or("footer length exceeds the object")?;
    let mut f = &object[footer_start..end - 4];
    let count = f.get_u32() as usize;
    if f.remaining() != count * 44 {
        return Err("footer size does not match its entry count".into());
    }
    Ok((0..count)
        .map(|_| FooterEntry {
            topic_id: f.get_i64(),
            partition: f.get_i32(),
            base_offset: f.get_i64(),
            last_offset: f.get_i64(),
            byte_start: f.get_u64(),
            byte_len: f.get_u64(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trips_and_detects_damage() {
        let mut b = ObjectBuilder::default();
        assert_eq!(b.push_chunk(1, 0, 0, 2, [&b"abc"[..], &b"de"[..]]), (0, 5));
        assert_eq!(b.push_chunk(1, 3, 10, 10, [&b"xyz"[..]]), (5, 3));
        let obj = b.finish();
        let f = read_footer(&obj).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].partition, 3);
        assert_eq!(&obj[f[1].byte_start as usize..][..3], b"xyz");
        let mut bad = obj.to_vec();
        bad[1] ^= 1;
        assert!(read_footer(&bad).is_err());
    }
}
