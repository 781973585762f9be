//! Request decoding: the fixed header fields first (so even a request we
//! cannot decode can be answered or logged with its correlation id), then the
//! versioned header and body.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::versions::{self, PRODUCE_MIN_DECODABLE};

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub body: RequestKind,
}

/// Why a frame did not become a [`Request`]. Each variant says how the
/// connection should answer.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Too short to hold even api key, version and correlation id: close.
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    /// An API key we do not know or serve: log and close, as Kafka does.
    #[error("unknown or unserved API key {api_key} (version {api_version})")]
    UnknownApi {
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
    },
    /// A served API at a version outside our range. ApiVersions answers it
    /// with UNSUPPORTED_VERSION; Produce v0-2 get an error response; anything
    /// else is closed.
    #[error("{api_key:?} version {api_version} is not supported (supported: {min}..={max})")]
    UnsupportedVersion {
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
        min: i16,
        max: i16,
    },
    /// The header or body does not parse at the version it claims: close.
    #[error("malformed {api_key:?} v{api_version} request: {reason}")]
    Malformed {
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
        reason: String,
    },
}

/// Decodes one frame (without its length prefix).
pub fn decode_request(frame: Bytes) -> Result<Request, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort(frame.len()));
    }
    let mut peek = &frame[..8];
    let raw_key = peek.get_i16();
    let api_version = peek.get_i16();
    let correlation_id = peek.get_i32();

    let served = versions::served(raw_key).ok_or(DecodeError::UnknownApi {
        api_key: raw_key,
        api_version,
        correlation_id,
    })?;
    let api_key = served.key;
    let min_decodable = if api_key == ApiKey::Produce {
        PRODUCE_MIN_DECODABLE
    } else {
        served.min
    };
    if api_version < min_decodable || api_version > served.max {
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            api_version,
            correlation_id,
            min: served.min,
            max: served.max,
        });
    }

    let malformed = |reason: String| DecodeError::Malformed {
        api_key,
        api_version,
        correlation_id,
        reason,
    };
    let mut buf = frame;
    let header_version = api_key.request_header_version(api_version);
    let header = RequestHeader::decode(&mut buf, header_version)
        .map_err(|e| malformed(format!("header: {e}")))?;
    let body = RequestKind::decode(api_key, &mut buf, api_version)
        .map_err(|e| malformed(format!("body: {e}")))?;
    // Trailing bytes are ignored, as Kafka does: librdkafka sends a field
    // in Metadata v11+ that the schema no longer has.
    Ok(Request {
        api_key,
        api_version,
        correlation_id,
        client_id: header.client_id.map(|s| s.to_string()),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn frame<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Bytes {
        let mut b = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("t")));
        header
            .encode(&mut b, key.request_header_version(version))
            .unwrap();
        body.encode(&mut b, version).unwrap();
        b.freeze()
    }

    #[test]
    fn decodes_a_request_and_its_header() {
        let f = frame(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("x"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        );
        let r = decode_request(f).unwrap();
        assert_eq!(r.api_key, ApiKey::ApiVersions);
        assert_eq!(r.correlation_id, 7);
        assert_eq!(r.client_id.as_deref(), Some("t"));
    }

    #[test]
    fn refuses_unknown_keys_versions_and_garbage() {
        let mut b = BytesMut::new();
        b.put_i16(999);
        b.put_i16(0);
        b.put_i32(5);
        assert!(matches!(
            decode_request(b.freeze()),
            Err(DecodeError::UnknownApi {
                api_key: 999,
                correlation_id: 5,
                ..
            })
        ));

        let f = frame(ApiKey::Metadata, 12, &MetadataRequest::default());
        let mut v = BytesMut::from(&f[..]);
        v[2..4].copy_from_slice(&99i16.to_be_bytes());
        assert!(matches!(
            decode_request(v.freeze()),
            Err(DecodeError::UnsupportedVersion {
                api_version: 99,
                ..
            })
        ));

        let truncated = f.slice(..f.len() - 3);
        assert!(matches!(
            decode_request(truncated),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 1])),
            Err(DecodeError::TooShort(2))
        ));
    }
}

#[cfg(test)]
mod random_frames {
    use super::*;

    /// Random and mutated frames never panic the decoder (the fuzz target
    /// in `fuzz/` explores this much further).
    #[test]
    fn random_and_mutated_frames_never_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 96) as usize;
            let mut f: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Steer half the inputs to a served API key and version so the
            // body decoders are reached, not only the key check.
            if f.len() >= 4 && next() % 2 == 0 {
                let api = crate::versions::SERVED_APIS[(next() % 12) as usize];
                f[0..2].copy_from_slice(&(api.key as i16).to_be_bytes());
                f[2..4].copy_from_slice(&api.max.to_be_bytes());
            }
            let _ = decode_request(Bytes::from(f));
        }
    }
}
