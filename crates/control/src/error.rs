//! [`ApiError`]: every refusal of the REST API, answered as
//! `{"error": "<code>", "message": "<what and how to fix>"}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use sluice_storage::StorageError;
use sluice_tenancy::TenancyError;

/// The body of every refusal.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code for scripts, e.g. `tenant_not_found`.
    pub error: &'static str,
    /// What was wrong and how to fix it.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn multi_tenancy_off() -> ApiError {
        ApiError::from(TenancyError::Disabled)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong token: send `Authorization: Bearer <token>` (the CLI's --token or SLUICE_TOKEN) with the operator token from <data-dir>/operator.token or a tenant token from `sluice tokens create`",
        )
    }

    /// 503 for a storage error: the broker's own failures are logged and
    /// answered with a generic text (no paths or SQL for a tenant); other
    /// storage errors (shutting down, not the leader) say what they are.
    pub fn storage(what: &str, e: &StorageError) -> ApiError {
        tracing::warn!(error = %e, "{what} failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.client_message(),
        )
    }

    /// The catalog or storage failed: worth a retry.
    pub fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
        tracing::warn!(error = %e, "{what} failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{what} failed: {e}; retry shortly"),
        )
    }
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> ApiError {
        use TenancyError as T;
        let (status, code) = match &e {
            T::UnknownPlan { .. } => (StatusCode::BAD_REQUEST, "unknown_plan"),
            T::InvalidName(_) => (StatusCode::BAD_REQUEST, "invalid_name"),
            T::UnknownTenant(_) => (StatusCode::NOT_FOUND, "tenant_not_found"),
            T::UnknownCredential { .. } => (StatusCode::NOT_FOUND, "credential_not_found"),
            T::TenantExists(_) => (StatusCode::CONFLICT, "tenant_exists"),
            T::CredentialExists(_) => (StatusCode::CONFLICT, "credential_exists"),
            T::UnknownToken { .. } => (StatusCode::NOT_FOUND, "token_not_found"),
            T::Disabled => (StatusCode::NOT_FOUND, "multi_tenancy_off"),
            T::Seal(_) => (StatusCode::CONFLICT, "secret_unavailable"),
            T::Storage(e) => return ApiError::storage("the catalog", e),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        ApiError::storage("storage", &e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: self.code,
            message: self.message,
        });
        if self.status == StatusCode::UNAUTHORIZED {
            return (self.status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
        }
        (self.status, body).into_response()
    }
}

/// Parses a JSON request body, treating an empty body as `{}`; a malformed
/// one is a JSON refusal rather than axum's plain-text one.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))
}
