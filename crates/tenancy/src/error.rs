//! Tenancy errors; each message says what was wrong and how to fix it.

use sluice_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("unknown plan `{plan}`: plans are {known}")]
    UnknownPlan { plan: String, known: String },
    #[error("{0}")]
    Plans(String),
    #[error("tenant `{0}` does not exist")]
    UnknownTenant(String),
    #[error(
        "tenant `{0}` already exists; pick another name or leave it out to get a generated one"
    )]
    TenantExists(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("credential `{username}` does not exist for tenant `{tenant}`")]
    UnknownCredential { tenant: String, username: String },
    #[error("token `{id}` does not exist for tenant `{tenant}`; `sluice tokens list --tenant {tenant}` shows its tokens")]
    UnknownToken { tenant: String, id: String },
    #[error("credential `{0}` already exists")]
    CredentialExists(String),
    #[error("multi-tenancy is off: start the broker with --multi-tenant to manage tenants")]
    Disabled,
    #[error("secrets: {0}")]
    Seal(String),
    #[error("certificates: {0}")]
    Pki(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl TenancyError {
    /// The text a client gets: a storage failure's details stay in the
    /// broker's log ([`StorageError::client_message`]).
    pub fn client_message(&self) -> String {
        match self {
            TenancyError::Storage(e) => e.client_message(),
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = TenancyError> = std::result::Result<T, E>;
