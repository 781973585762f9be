//! The Kafka broker: the network server, connections, and one handler per
//! Kafka API.
//!
//! - [`server`]: the listener and graceful shutdown.
//! - [`connection`]: one client connection: frames in, responses out, in
//!   order, with requests processed concurrently after their ordered part.
//! - [`handlers`]: decode → check → delegate to storage → respond, one file
//!   per API.
//! - [`context`]: what every handler can reach: storage, the group
//!   coordinator and broker identity.
//! - [`groups`]: the group coordinator (classic and KIP-848 consumer groups,
//!   committed offsets).

pub mod connection;
pub mod context;
pub mod groups;
pub mod handlers;
pub mod server;

pub use context::{BrokerConfig, BrokerContext};
pub use server::Server;
