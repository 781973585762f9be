//! The Kafka wire protocol as Sluice speaks it.
//!
//! This crate owns everything between the socket and a typed request: the
//! size-bounded frame, the request header, decoding request bodies (through
//! the `kafka-protocol` crate's Kafka 4.1 schemas), encoding responses, the
//! table of APIs and versions we serve, the header-only checks of record
//! batches on the produce path, and the record codecs log compaction uses. It knows nothing of storage or tenants.

pub mod alloc_guard;
pub mod batch;
pub mod batch_records;
pub mod codec;
pub mod frame;
pub mod record_checks;
pub mod request;
pub mod response;
pub mod versions;

pub use alloc_guard::ReserveLargeAllocations;
pub use kafka_protocol;
pub use kafka_protocol::error::ResponseError as ErrorCode;
