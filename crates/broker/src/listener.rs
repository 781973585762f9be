//! What a Kafka listener promises its clients: the address they are told to
//! dial, whether they must authenticate first, and whether it speaks TLS.

use crate::tls::Tls;

/// One listener's settings, shared by its connections.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Kafka's listener name (`PLAINTEXT`, `SASL_PLAINTEXT`, `SSL`), for logs.
    pub name: String,
    /// The host and port clients of this listener are told to connect to in
    /// Metadata, FindCoordinator and DescribeCluster: a client that came in
    /// over TLS must be sent back to the TLS port.
    pub advertised_host: String,
    pub advertised_port: i32,
    /// Clients must authenticate (SASL, or a client certificate on TLS)
    /// before any request but ApiVersions and the SASL ones.
    pub require_auth: bool,
    /// TLS settings on the TLS listener (`SSL`).
    pub tls: Option<Tls>,
}

impl Listener {
    /// An open listener: no authentication, everyone the anonymous superuser.
    pub fn open(advertised_host: &str, advertised_port: i32) -> Listener {
        Listener {
            name: "PLAINTEXT".into(),
            advertised_host: advertised_host.to_string(),
            advertised_port,
            require_auth: false,
            tls: None,
        }
    }

    /// SASL PLAIN or SCRAM over plaintext.
    pub fn sasl_plaintext(advertised_host: &str, advertised_port: i32) -> Listener {
        Listener {
            name: "SASL_PLAINTEXT".into(),
            require_auth: true,
            ..Listener::open(advertised_host, advertised_port)
        }
    }

    /// TLS, with a client certificate or SASL (SSL and SASL_SSL in one).
    pub fn tls(advertised_host: &str, advertised_port: i32, tls: Tls) -> Listener {
        Listener {
            name: "SSL".into(),
            require_auth: true,
            tls: Some(tls),
            ..Listener::open(advertised_host, advertised_port)
        }
    }
}
