//! The service's certificate authority: generated on first start, it signs
//! the broker certificate (carrying every name and address clients dial, so
//! hostname verification passes) and one client certificate per credential
//! for mTLS.

use std::path::Path;

use crate::error::{Result, TenancyError};

/// A client certificate issued for a credential.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
    /// Lower-case hex SHA-256 of the certificate's DER: how a connection's
    /// certificate is matched to its credential (so a rotated or revoked
    /// certificate stops working even though the CA signed it).
    pub fingerprint: String,
}

/// The CA and the broker's certificate.
#[derive(Debug)]
pub struct Pki {
    ca_pem: String,
}

impl Pki {
    /// Loads the CA from `dir` (creating it on first start) and issues a
    /// broker certificate for `names` (DNS names and IP addresses).
    pub fn load_or_create(_dir: &Path, _names: &[String]) -> Result<Pki> {
        Err(TenancyError::Pki("not built yet".into()))
    }

    /// The CA certificate clients trust (`KAFKA_TRUSTED_CERT`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Signs a client certificate whose common name is `common_name`.
    pub fn issue_client(&self, _common_name: &str) -> Result<ClientCert> {
        Err(TenancyError::Pki("not built yet".into()))
    }
}
