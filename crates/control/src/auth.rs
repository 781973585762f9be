//! Who calls the REST API: `Authorization: Bearer <token>` carries either
//! the operator token (everything) or a tenant API token (that tenant
//! only). An open broker (without `--multi-tenant`) has no tokens and every
//! caller operates it.
//!
//! - [`Operator`]: endpoints only the operator may call (tenants, plans,
//!   tokens, the cluster).
//! - [`Caller`]: endpoints a tenant may call for itself; [`Caller::scope`]
//!   and [`Caller::require_tenant`] keep a tenant token to its own tenant.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, StatusCode};
use sluice_tenancy::names;

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
        match caller(parts, plane)? {
            Caller::Operator => Ok(Operator),
            Caller::Tenant(_) => Err(operator_only()),
        }
    }
}

/// The operator token when multi-tenancy is on; anyone otherwise (an open
/// broker has no token).
pub struct OperatorIfEnabled;

impl FromRequestParts<ControlPlane> for OperatorIfEnabled {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, plane: &ControlPlane) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, plane).await? {
            Caller::Operator => Ok(OperatorIfEnabled),
            Caller::Tenant(_) => Err(operator_only()),
        }
    }
}

/// The operator, or one tenant through its API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Operator,
    /// A tenant token's tenant.
    Tenant(String),
}

impl FromRequestParts<ControlPlane> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, plane: &ControlPlane) -> Result<Self, ApiError> {
        if !plane.tenancy.enabled() {
            return Ok(Caller::Operator);
        }
        caller(parts, plane)
    }
}

/// Which topics and groups a request acts on: one tenant's (names without
/// its prefix get it), or everything (the operator without `tenant`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The tenant's prefix, `<name>.`; `None` for everything.
    pub prefix: Option<String>,
    pub tenant: Option<String>,
}

impl Scope {
    /// The full name of a topic or group named by the user: prefixed when
    /// the scope is a tenant's and the name lacks the prefix.
    pub fn full_name(&self, name: &str) -> String {
        match &self.prefix {
            Some(p) if !name.starts_with(p.as_str()) => format!("{p}{name}"),
            _ => name.to_string(),
        }
    }

    /// Whether a full topic or group name is in scope.
    pub fn contains(&self, full_name: &str) -> bool {
        self.prefix
            .as_ref()
            .is_none_or(|p| full_name.starts_with(p.as_str()))
    }
}

impl Caller {
    /// The scope of a request that may name a tenant (`?tenant=`): a tenant
    /// token is held to its own tenant whatever it names; the operator gets
    /// the named tenant, or everything.
    pub fn scope(&self, plane: &ControlPlane, tenant: Option<&str>) -> Result<Scope, ApiError> {
        let tenant = match (self, tenant) {
            (Caller::Tenant(own), Some(named)) if named != own => {
                return Err(unknown_tenant(named))
            }
            (Caller::Tenant(own), _) => Some(own.clone()),
            (Caller::Operator, Some(named)) => {
                plane.tenancy.tenant(named)?;
                Some(named.to_string())
            }
            (Caller::Operator, None) => None,
        };
        Ok(Scope {
            prefix: tenant.as_deref().map(names::prefix),
            tenant,
        })
    }

    /// For `/v1/tenants/{name}/…`: the operator may act on any tenant, a
    /// tenant token on its own only. Another tenant is answered as unknown,
    /// so that tokens do not reveal which tenants exist.
    pub fn require_tenant(&self, name: &str) -> Result<(), ApiError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::Tenant(own) if own == name => Ok(()),
            Caller::Tenant(_) => Err(unknown_tenant(name)),
        }
    }
}

fn unknown_tenant(name: &str) -> ApiError {
    ApiError::not_found(
        "tenant_not_found",
        format!("tenant `{name}` does not exist"),
    )
}

fn operator_only() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "this needs the operator token; a tenant token manages only its own tenant's topics, groups, credentials and info",
    )
}

fn caller(parts: &Parts, plane: &ControlPlane) -> Result<Caller, ApiError> {
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
        return Ok(Caller::Operator);
    }
    plane
        .tenancy
        .token_tenant(token)
        .map(Caller::Tenant)
        .ok_or_else(ApiError::unauthorized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_scope_prefixes_bare_names_only() {
        let s = Scope {
            prefix: Some("acme.".into()),
            tenant: Some("acme".into()),
        };
        assert_eq!(s.full_name("orders"), "acme.orders");
        assert_eq!(s.full_name("acme.orders"), "acme.orders");
        assert!(s.contains("acme.orders"));
        assert!(!s.contains("other.orders"));
        let all = Scope {
            prefix: None,
            tenant: None,
        };
        assert_eq!(all.full_name("orders"), "orders");
        assert!(all.contains("other.orders"));
    }
}
