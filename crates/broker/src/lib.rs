//! The Kafka broker: the network server, connections, and one handler per
//! Kafka API.
//!
//! - [`server`]: the listener and graceful shutdown.
//! - [`connection`]: one client connection: frames in, responses out, in
//!   order, with requests processed concurrently after their ordered part.
//! - [`handlers`]: decode → check → delegate to storage → respond, one file
//!   per API.
//! - [`context`]: what every handler can reach: storage, the group
//!   coordinator, tenancy and broker identity.
//! - [`listener`], [`session`], [`authz`]: who a connection is (SASL or a
//!   client certificate) and what it may do.
//! - [`tls`]: the TLS listener's handshake and client certificates.
//! - [`quota`]: per-tenant byte and request rates (KIP-219 throttling),
//!   connection limits and capacity.
//! - [`traffic`]: recent message and byte rates per topic.
//! - [`groups`]: the group coordinator (classic and KIP-848 consumer groups,
//!   committed offsets).

mod auth_failures;
pub mod authz;
pub mod connection;
pub mod context;
pub mod groups;
pub mod handlers;
pub mod listener;
pub mod quota;
pub mod server;
pub mod session;
pub mod tls;
pub mod traffic;

pub use context::{BrokerConfig, BrokerContext};
pub use listener::Listener;
pub use server::Server;
