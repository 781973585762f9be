//! The record compression codecs of Kafka's batch format, both ways.
//!
//! A batch's records are compressed together with the codec its attributes
//! name: 1 gzip, 2 snappy, 3 lz4, 4 zstd. Reading accepts what any client
//! writes; writing produces what every client reads (the framings the Java
//! client writes), so a batch the broker rebuilds (log compaction) decodes
//! wherever the original did.

use std::io::{self, Read, Write};

use crate::batch::BatchError;

/// The most decompressed record bytes one batch may hold when the broker
/// reads its records.
pub const MAX_RECORDS_BYTES: u64 = 64 << 20;

/// A reader of `payload` decompressed with `codec`.
pub fn decompressing(codec: i16, payload: &[u8]) -> Result<Box<dyn Read + '_>, BatchError> {
    let failed = |e: io::Error| BatchError::Invalid(format!("cannot decompress records: {e}"));
    Ok(match codec {
        0 => Box::new(payload),
        1 => Box::new(flate2::read::GzDecoder::new(payload)),
        2 => Box::new(SnappyReader::new(payload).map_err(failed)?),
        3 => Box::new(lz4::Decoder::new(payload).map_err(failed)?),
        4 => Box::new(zstd::stream::read::Decoder::with_buffer(payload).map_err(failed)?),
        other => {
            return Err(BatchError::Invalid(format!(
                "unknown compression codec {other}"
            )))
        }
    })
}

/// `records` compressed with `codec`.
pub fn compress(codec: i16, records: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        0 => Ok(records.to_vec()),
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(records)?;
            e.finish()
        }
        2 => xerial_snappy(records),
        3 => {
            // Independent 64 KiB blocks without block or content
            // checksums: the frame the Java client writes.
            let mut e = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::new())?;
            e.write_all(records)?;
            let (out, result) = e.finish();
            result.map(|()| out)
        }
        // Level 3, Kafka's default.
        4 => zstd::bulk::compress(records, 3),
        other => Err(io::Error::other(format!(
            "unknown compression codec {other}"
        ))),
    }
}

/// Bytes of uncompressed input per xerial snappy block (the Java client's
/// default).
const XERIAL_BLOCK: usize = 32 << 10;

/// Snappy in the Java client's xerial framing, which every client reads.
fn xerial_snappy(records: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(XERIAL_HEADER + records.len() / 2 + 64);
    out.extend_from_slice(XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes()); // version
    out.extend_from_slice(&1i32.to_be_bytes()); // compatible version
    let mut encoder = snap::raw::Encoder::new();
    for block in records.chunks(XERIAL_BLOCK) {
        let compressed = encoder.compress_vec(block).map_err(io::Error::other)?;
        out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    Ok(out)
}

/// Snappy as Kafka clients write it: the Java client's xerial framing
/// (a magic header, then blocks each prefixed with its length), or one raw
/// snappy block (librdkafka can write either).
struct SnappyReader<'a> {
    /// Compressed blocks not read yet (xerial), or empty once the raw
    /// block is decompressed.
    rest: &'a [u8],
    block: Vec<u8>,
    at: usize,
}

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// The xerial header: magic, version and compatible version.
const XERIAL_HEADER: usize = 16;

impl<'a> SnappyReader<'a> {
    fn new(payload: &'a [u8]) -> io::Result<Self> {
        if payload.starts_with(XERIAL_MAGIC) {
            let rest = payload.get(XERIAL_HEADER..).unwrap_or_default();
            return Ok(SnappyReader {
                rest,
                block: Vec::new(),
                at: 0,
            });
        }
        Ok(SnappyReader {
            rest: &[],
            block: decompress_block(payload)?,
            at: 0,
        })
    }

    /// Decompresses the next xerial block; false when there is none.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let (len, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = rest.get(..len).ok_or(io::ErrorKind::UnexpectedEof)?;
        self.rest = &rest[len..];
        self.block = decompress_block(block)?;
        self.at = 0;
        Ok(true)
    }
}

fn decompress_block(block: &[u8]) -> io::Result<Vec<u8>> {
    let len = snap::raw::decompress_len(block).map_err(io::Error::other)?;
    if len as u64 > MAX_RECORDS_BYTES {
        return Err(io::Error::other(format!("a snappy block of {len} bytes")));
    }
    snap::raw::Decoder::new()
        .decompress_vec(block)
        .map_err(io::Error::other)
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
