//! Tenant API tokens: bearer tokens for the REST API that act for one
//! tenant only (`sluice tokens create --tenant NAME`). The token is shown
//! once; the catalog keeps its SHA-256. Tokens carry 238 bits of entropy,
//! so an unsalted fast hash is enough: there is nothing to brute-force.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_storage::catalog::TokenRow;

use crate::error::{Result, TenancyError};
use crate::service::Tenancy;
use sluice_storage::now_ms;

/// Every token starts with this, so that secret scanners and people can
/// tell what it is.
const TOKEN_PREFIX: &str = "sluice_";

/// A token as lists show it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub tenant: String,
    pub created_ms: i64,
}

/// A new token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub id: String,
    pub tenant: String,
    pub token: String,
    pub created_ms: i64,
}

fn random_string(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn info(row: &TokenRow) -> TokenInfo {
    TokenInfo {
        id: row.id.clone(),
        tenant: row.tenant.clone(),
        created_ms: row.created_ms,
    }
}

impl Tenancy {
    /// Issues a new API token for a tenant.
    pub async fn create_token(&self, tenant: &str) -> Result<IssuedToken> {
        self.require_enabled()?;
        self.tenant(tenant)?;
        let id = format!("tok-{}", random_string(8).to_lowercase());
        let token = format!("{TOKEN_PREFIX}{}", random_string(40));
        let row = TokenRow {
            id: id.clone(),
            tenant: tenant.to_string(),
            hash: hash(&token),
            created_ms: now_ms(),
        };
        if !self.catalog.save_token(&row).await? {
            return Err(TenancyError::UnknownTenant(tenant.to_string()));
        }
        self.refresh().await?;
        tracing::info!(tenant, token = %id, "issued API token");
        Ok(IssuedToken {
            id,
            tenant: tenant.to_string(),
            token,
            created_ms: row.created_ms,
        })
    }

    /// A tenant's tokens, oldest first.
    pub fn tokens(&self, tenant: &str) -> Result<Vec<TokenInfo>> {
        self.tenant(tenant)?;
        let mut list: Vec<_> = self
            .snap()
            .tokens
            .values()
            .filter(|t| t.tenant == tenant)
            .map(info)
            .collect();
        list.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(list)
    }

    /// Revokes a tenant's token; it stops working at once on this broker
    /// and within a reload on others.
    pub async fn revoke_token(&self, tenant: &str, id: &str) -> Result<()> {
        self.require_enabled()?;
        let owned = self
            .snap()
            .tokens
            .values()
            .any(|t| t.tenant == tenant && t.id == id);
        if !owned || !self.catalog.delete_token(id).await? {
            return Err(TenancyError::UnknownToken {
                tenant: tenant.to_string(),
                id: id.to_string(),
            });
        }
        self.refresh().await?;
        Ok(())
    }

    /// The tenant a presented API token acts for, if it is a live token.
    pub fn token_tenant(&self, token: &str) -> Option<String> {
        if !token.starts_with(TOKEN_PREFIX) {
            return None;
        }
        let snap = self.snap();
        let row = snap.tokens.get(&hash(token))?;
        snap.tenants
            .contains_key(&row.tenant)
            .then(|| row.tenant.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_and_hashed() {
        let t = format!("{TOKEN_PREFIX}{}", random_string(40));
        assert_eq!(t.len(), 47);
        assert_eq!(hash(&t).len(), 64);
        assert_ne!(hash(&t), hash(&format!("{t}x")));
    }
}
