//! ApiVersions: advertises exactly the version table we serve.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseKind};
use sluice_protocol::response::encode_response;
use sluice_protocol::versions::SERVED_APIS;
use sluice_protocol::ErrorCode;

use super::{count_error, RequestMeta};

fn table() -> Vec<ApiVersion> {
    SERVED_APIS
        .iter()
        .map(|a| {
            ApiVersion::default()
                .with_api_key(a.key as i16)
                .with_min_version(a.min)
                .with_max_version(a.max)
        })
        .collect()
}

pub fn handle(req: ApiVersionsRequest, meta: RequestMeta) -> ApiVersionsResponse {
    // v3+ names the client (KIP-511); Kafka refuses names that are not
    // letters, digits, `-` and `.` (starting and ending with a letter or
    // digit), with an error response and no table.
    if meta.api_version >= 3
        && !(well_formed(&req.client_software_name) && well_formed(&req.client_software_version))
    {
        return ApiVersionsResponse::default()
            .with_error_code(count_error(meta, ErrorCode::InvalidRequest));
    }
    ApiVersionsResponse::default().with_api_keys(table())
}

/// KIP-511's rule for a client software name or version.
fn well_formed(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.';
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() && b.iter().all(inner)
        }
        _ => false,
    }
}

/// The v0 response to an ApiVersions request at a version we do not know:
/// UNSUPPORTED_VERSION with our table, so the client retries with one we do.
pub fn unsupported_version(correlation_id: i32) -> Bytes {
    let body = ApiVersionsResponse::default()
        .with_error_code(ErrorCode::UnsupportedVersion.code())
        .with_api_keys(table());
    encode_response(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &ResponseKind::ApiVersions(body),
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn client_names_follow_kip_511() {
        for good in [
            "librdkafka",
            "2.16.1",
            "confluent-kafka-python",
            "2.16.1-rdkafka-2.16.1",
            "a",
        ] {
            assert!(well_formed(good), "{good}");
        }
        for bad in ["", "sw eep!", "-x", "x.", "3.7.0+build", "é"] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
