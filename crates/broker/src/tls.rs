//! The TLS listener's part of a connection: the handshake, and who a client
//! certificate stands for.
//!
//! Client certificates are optional. A client that presents one signed by
//! our CA is authenticated as the credential whose certificate it is (by
//! SHA-256 fingerprint, so a rotated or revoked credential's certificate is
//! refused though the CA signed it); a client without one must authenticate
//! with SASL over the encrypted connection (SASL_SSL), as on the plaintext
//! multi-tenant listener.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};
use sluice_tenancy::pki::Pki;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::connection::Connection;
use crate::context::BrokerContext;
use crate::listener::Listener;

/// A client that has not finished the handshake by then is dropped, so
/// idle sockets cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("TLS client verification: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The TLS settings of a listener: our certificate, and the CA client
/// certificates must be signed by.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Serves the broker certificate of `pki` and verifies client
    /// certificates against its CA.
    pub fn new(pki: &Pki) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(pki.ca_der().to_vec()))?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()?;
        let chain = vec![CertificateDer::from(pki.broker_cert_der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.broker_key_der().to_vec()));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// Lower-case hex SHA-256 of a certificate's DER, as credentials store it.
fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs the handshake and then the connection; spawned per accepted socket
/// so a slow handshake never holds up the accept loop.
pub async fn serve(
    tls: Tls,
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<BrokerContext>,
    listener: Arc<Listener>,
    shutdown: watch::Receiver<bool>,
) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake failed");
            metrics::counter!("sluice_tls_handshake_failures_total").increment(1);
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out");
            metrics::counter!("sluice_tls_handshake_failures_total").increment(1);
            return;
        }
    };
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| fingerprint(cert));
    let conn = Connection::new(stream, peer, ctx.clone(), listener, shutdown);
    let conn = match leaf {
        None => conn,
        Some(fp) => match ctx.tenancy.principal_for_certificate(&fp) {
            Some(principal) => {
                tracing::info!(%peer, principal = %principal.name, "authenticated by client certificate");
                conn.authenticated(principal)
            }
            None => {
                // Signed by our CA but no longer any credential's: rotated
                // or revoked.
                tracing::warn!(%peer, fingerprint = %fp, "closing connection: client certificate of no current credential");
                metrics::counter!("sluice_tls_refused_certificates_total").increment(1);
                return;
            }
        },
    };
    conn.run().await;
}
