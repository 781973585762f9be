//! The operator token: every tenant endpoint needs
//! `Authorization: Bearer <operator token>`, and, once multi-tenancy is on,
//! so do the group views (they show every tenant's groups).

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};

use crate::error::ApiError;
use crate::ControlPlane;

/// Proof that the request carries the operator token. Refuses with 404
/// `multi_tenancy_off` when the broker runs without `--multi-tenant`.
pub struct Operator;

impl FromRequestParts<ControlPlane> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, plane: &ControlPlane) -> Result<Self, ApiError> {
        if !plane.tenancy.enabled() {
            return Err(ApiError::multi_tenancy_off());
        }
        check_token(parts, plane)?;
        Ok(Operator)
    }
}

/// The operator token when multi-tenancy is on; anyone otherwise (an open
/// broker has no token).
pub struct OperatorIfEnabled;

impl FromRequestParts<ControlPlane> for OperatorIfEnabled {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, plane: &ControlPlane) -> Result<Self, ApiError> {
        if plane.tenancy.enabled() {
            check_token(parts, plane)?;
        }
        Ok(OperatorIfEnabled)
    }
}

fn check_token(parts: &Parts, plane: &ControlPlane) -> Result<(), ApiError> {
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(ApiError::unauthorized)?;
    if plane.tenancy.is_operator_token(token) {
        Ok(())
    } else {
        Err(ApiError::unauthorized())
    }
}
