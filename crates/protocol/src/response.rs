//! Response encoding: size prefix, response header, body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

/// Encodes a response frame, length prefix included.
pub fn encode_response(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, String> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0); // patched below
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api_key.response_header_version(api_version))
        .map_err(|e| e.to_string())?;
    body.encode(&mut buf, api_version)
        .map_err(|e| e.to_string())?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// The Produce v0-2 error response, encoded by hand because the codec no
/// longer knows those versions: every partition gets UNSUPPORTED_VERSION.
pub fn encode_legacy_produce_refusal(
    api_version: i16,
    correlation_id: i32,
    partitions: &[(String, Vec<i32>)],
) -> Bytes {
    let unsupported = crate::ErrorCode::UnsupportedVersion.code();
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    buf.put_i32(correlation_id);
    buf.put_i32(partitions.len() as i32);
    for (topic, parts) in partitions {
        buf.put_i16(topic.len() as i16);
        buf.put_slice(topic.as_bytes());
        buf.put_i32(parts.len() as i32);
        for p in parts {
            buf.put_i32(*p);
            buf.put_i16(unsupported);
            buf.put_i64(-1);
            if api_version >= 2 {
                buf.put_i64(-1);
            }
        }
    }
    if api_version >= 1 {
        buf.put_i32(0);
    }
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

/// Reads the topic/partition layout of a Produce v0-2 request body so that
/// the refusal names each partition. Returns `None` if it does not parse.
pub fn legacy_produce_partitions(frame: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    use bytes::Buf;
    let mut b = frame;
    if b.remaining() < 8 {
        return None;
    }
    b.advance(8); // api key, version, correlation id
    let client_len = b.get_i16();
    if client_len > 0 {
        if b.remaining() < client_len as usize {
            return None;
        }
        b.advance(client_len as usize);
    }
    if b.remaining() < 10 {
        return None;
    }
    b.advance(6); // acks, timeout
    let topics = b.get_i32();
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        if b.remaining() < 2 {
            return None;
        }
        let n = b.get_i16();
        if n < 0 || b.remaining() < n as usize + 4 {
            return None;
        }
        let name = String::from_utf8_lossy(&b[..n as usize]).into_owned();
        b.advance(n as usize);
        let parts = b.get_i32();
        let mut ids = Vec::new();
        for _ in 0..parts.max(0) {
            if b.remaining() < 8 {
                return None;
            }
            ids.push(b.get_i32());
            let size = b.get_i32();
            if size > 0 {
                if b.remaining() < size as usize {
                    return None;
                }
                b.advance(size as usize);
            }
        }
        out.push((name, ids));
    }
    Some(out)
}
