//! Feeds arbitrary bytes to the request decoder and, for produce-shaped
//! input, to the record batch checks. Neither may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_protocol::batch::{validate_produced, BatchRules};
use sluice_protocol::request::decode_request;

// As in the broker: huge up-front capacities are reserved, not committed.
#[global_allocator]
static ALLOC: sluice_protocol::ReserveLargeAllocations = sluice_protocol::ReserveLargeAllocations;

fuzz_target!(|data: &[u8]| {
    let _ = decode_request(bytes::Bytes::copy_from_slice(data));
    let rules = BatchRules {
        max_message_bytes: 1 << 20,
        log_append_time: false,
        max_before_ms: i64::MAX,
        max_after_ms: i64::MAX,
    };
    let _ = validate_produced(data, &rules, 0);
});
