//! ApiVersions: advertises exactly the version table we serve.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseKind};
use sluice_protocol::response::encode_response;
use sluice_protocol::versions::SERVED_APIS;
use sluice_protocol::ErrorCode;

use super::RequestMeta;

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

pub fn handle(_req: ApiVersionsRequest, _meta: RequestMeta) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(table())
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
