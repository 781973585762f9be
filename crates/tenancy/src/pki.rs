//! The service's certificate authority: generated on first start, it signs
//! the broker certificate (carrying every name and address clients dial, so
//! hostname verification passes) and one client certificate per credential
//! for mTLS.
//!
//! The CA lives in `<dir>/ca.pem` and `<dir>/ca.key` (owner-only) and is
//! reused on every later start, so the `KAFKA_TRUSTED_CERT` clients were
//! given stays valid; the broker certificate is issued afresh at each start,
//! for the names of that start.

use std::fmt;
use std::io::Write;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::{Result, TenancyError};

/// The CA's common name; clients see it as the issuer of every certificate.
const CA_NAME: &str = "Sluice CA";
/// The CA outlives any certificate it signs.
const CA_VALIDITY: Duration = Duration::days(10 * 365);
/// Client and broker certificates.
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Tolerates clocks a little behind ours.
const BACKDATE: Duration = Duration::hours(1);

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
pub struct Pki {
    ca_pem: String,
    ca_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
    broker_cert_der: Vec<u8>,
    broker_key_der: Vec<u8>,
    names: Vec<String>,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

fn pki_err(what: &str) -> impl FnOnce(rcgen::Error) -> TenancyError + '_ {
    move |e| TenancyError::Pki(format!("{what}: {e}"))
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> TenancyError {
    move |e| TenancyError::Pki(format!("{what}: {e}"))
}

/// Lower-case hex SHA-256 of a certificate's DER.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A random positive 128-bit serial number.
fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// Parameters shared by every certificate: a fresh serial and a validity
/// window starting a little in the past.
fn leaf_params(names: Vec<String>, common_name: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(names).map_err(pki_err("certificate names"))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.serial_number = Some(serial());
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// Writes `contents` to a new file readable only by its owner.
fn write_private(path: &Path, contents: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(io_err(format!("creating {}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(io_err(format!("writing {}", path.display())))
}

impl Pki {
    /// Loads the CA from `dir` (creating it on first start) and issues a
    /// broker certificate for `names` (DNS names and IP addresses).
    pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Pki> {
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let (ca_pem, ca_key) = match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                let pem = std::fs::read_to_string(&cert_path)
                    .map_err(io_err(format!("reading {}", cert_path.display())))?;
                let key_pem = std::fs::read_to_string(&key_path)
                    .map_err(io_err(format!("reading {}", key_path.display())))?;
                let key = KeyPair::from_pem(&key_pem).map_err(pki_err("reading the CA key"))?;
                (pem, key)
            }
            (false, false) => {
                let key = KeyPair::generate().map_err(pki_err("generating the CA key"))?;
                let mut params = CertificateParams::default();
                let mut dn = DistinguishedName::new();
                dn.push(DnType::CommonName, CA_NAME);
                params.distinguished_name = dn;
                params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
                params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                params.serial_number = Some(serial());
                let now = OffsetDateTime::now_utc();
                params.not_before = now - BACKDATE;
                params.not_after = now + CA_VALIDITY;
                let cert = params
                    .self_signed(&key)
                    .map_err(pki_err("signing the CA certificate"))?;
                // The key first: a CA certificate without its key is useless.
                write_private(&key_path, &key.serialize_pem())?;
                write_private(&cert_path, &cert.pem())?;
                tracing::info!(dir = %dir.display(), "created the certificate authority");
                (cert.pem(), key)
            }
            _ => {
                return Err(TenancyError::Pki(format!(
                    "{} holds only one of ca.pem and ca.key; restore the other, or delete both to get a new CA (clients must then trust the new one)",
                    dir.display()
                )))
            }
        };
        let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| TenancyError::Pki(format!("reading {}: {e}", cert_path.display())))?
            .to_vec();
        let issuer = Issuer::from_ca_cert_der(&ca_der.clone().into(), ca_key)
            .map_err(pki_err("reading the CA certificate"))?;

        let mut unique: Vec<String> = Vec::new();
        for name in names {
            let name = name.trim().trim_start_matches('[').trim_end_matches(']');
            if !name.is_empty() && !unique.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                unique.push(name.to_string());
            }
        }
        let common_name = unique
            .first()
            .cloned()
            .unwrap_or_else(|| "localhost".into());
        let mut params = leaf_params(unique.clone(), &common_name)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(pki_err("generating the broker key"))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(pki_err("signing the broker certificate"))?;
        Ok(Pki {
            ca_pem,
            ca_der,
            issuer,
            broker_cert_der: cert.der().to_vec(),
            broker_key_der: key.serialize_der(),
            names: unique,
        })
    }

    /// The CA certificate clients trust (`KAFKA_TRUSTED_CERT`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER-encoded (the broker verifies client
    /// certificates against it).
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The broker's certificate, DER-encoded; the CA is its only issuer.
    pub fn broker_cert_der(&self) -> &[u8] {
        &self.broker_cert_der
    }

    /// The broker certificate's private key, PKCS#8 DER.
    pub fn broker_key_der(&self) -> &[u8] {
        &self.broker_key_der
    }

    /// The names and addresses the broker certificate is valid for.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Signs a client certificate whose common name is `common_name`.
    pub fn issue_client(&self, common_name: &str) -> Result<ClientCert> {
        let mut params = leaf_params(Vec::new(), common_name)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(pki_err("generating a client key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(pki_err("signing a client certificate"))?;
        Ok(ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            fingerprint: fingerprint(cert.der()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        let first = Pki::load_or_create(&tls, &names).unwrap();
        let second = Pki::load_or_create(&tls, &names).unwrap();
        assert_eq!(first.ca_pem(), second.ca_pem());
        // A new broker certificate each start, from the same CA.
        assert_ne!(first.broker_cert_der(), second.broker_cert_der());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(tls.join("ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let client = second.issue_client("alice").unwrap();
        assert!(client.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(client.key_pem.contains("PRIVATE KEY"));
        assert_eq!(client.fingerprint.len(), 64);
        assert!(client
            .fingerprint
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        let der = CertificateDer::from_pem_slice(client.cert_pem.as_bytes()).unwrap();
        assert_eq!(fingerprint(&der), client.fingerprint);
    }

    #[test]
    fn half_a_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Pki::load_or_create(dir.path(), &["localhost".into()]).unwrap();
        std::fs::remove_file(dir.path().join("ca.key")).unwrap();
        let e = Pki::load_or_create(dir.path(), &["localhost".into()]).unwrap_err();
        assert!(e.to_string().contains("ca.key"), "{e}");
    }
}
