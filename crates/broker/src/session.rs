//! A connection's session: where it came from, which listener it reached,
//! and who it authenticated as.

use std::net::SocketAddr;
use std::sync::Arc;

use sluice_tenancy::scram::{Mechanism, ScramExchange};
use sluice_tenancy::Principal;

use crate::listener::Listener;
use crate::quota::{ConnectionSlot, Mute};

/// Where a connection is in SASL authentication.
#[derive(Debug, Default)]
pub enum SaslState {
    /// No handshake yet.
    #[default]
    Start,
    /// SaslHandshake chose a mechanism; SaslAuthenticate comes next.
    PlainChosen,
    ScramChosen(Mechanism),
    /// The server's first SCRAM message was sent; the client's proof comes next.
    ScramStarted(Box<ScramExchange>),
    /// Authenticated; Kafka allows no second authentication on a connection.
    Done,
}

pub struct Session {
    pub peer: SocketAddr,
    pub listener: Arc<Listener>,
    /// Who the requests come from: the anonymous superuser on an open
    /// listener, the authenticated principal, or `None` before authentication.
    pub principal: Option<Principal>,
    pub sasl: SaslState,
    /// Close the connection once the current response is sent (a failed
    /// authentication, or a request out of order).
    pub closing: bool,
    /// Quota throttling: no request is read before its deadline (KIP-219).
    pub mute: Arc<Mute>,
    /// This connection's place in its tenant's connection limit.
    pub connection_slot: Option<ConnectionSlot>,
}

impl Session {
    pub fn new(peer: SocketAddr, listener: Arc<Listener>) -> Session {
        let principal = (!listener.require_auth).then(Principal::anonymous);
        Session {
            peer,
            listener,
            principal,
            sasl: SaslState::Start,
            closing: false,
            mute: Arc::default(),
            connection_slot: None,
        }
    }

    /// The address ACL bindings name hosts by.
    pub fn host(&self) -> String {
        self.peer.ip().to_string()
    }
}
