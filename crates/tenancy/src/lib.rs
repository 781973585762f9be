//! Tenancy: tenants and their plans, credentials and principals, ACL
//! evaluation, guard rails, quotas and the certificate authority.
//!
//! Records live in the catalog (as rows the storage crate stores without
//! interpreting); [`Tenancy`] keeps a snapshot of them in memory for the
//! per-request checks and reloads it after every change and periodically,
//! so that a change made through one broker reaches the others. Nothing
//! here knows about sockets or the Kafka wire format.

pub mod acl;
pub mod error;
pub mod limits;
pub mod names;
pub mod pki;
pub mod plan;
pub mod principal;
pub mod quota;
pub mod scram;
pub mod seal;
mod service;
pub mod tokens;

pub use error::{Result, TenancyError};
pub use plan::{Plan, Plans};
pub use principal::Principal;
pub use seal::Sealer;
pub use service::{
    CredentialInfo, IssuedCredential, OperatorCredential, Tenancy, TenancyOptions, TenantInfo,
};
pub use tokens::{IssuedToken, TokenInfo};
