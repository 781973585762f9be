//! Feeds arbitrary bytes to the request decoder and, for produce-shaped
//! input, to the record batch checks. Neither may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_protocol::batch::{validate_produced, BatchRules};
use sluice_protocol::record_checks::{check_records, RecordRules};
use sluice_protocol::request::decode_request;

// As in the broker: huge up-front capacities are reserved, not committed.
#[global_allocator]
static ALLOC: sluice_protocol::ReserveLargeAllocations = sluice_protocol::ReserveLargeAllocations;

fuzz_target!(|data: &[u8]| {
    let _ = decode_request(bytes::Bytes::copy_from_slice(data));
    let rules = BatchRules {
        max_message_bytes: 1 << 20,
        log_append_time: false,
        max_before_ms: 1_000,
        max_after_ms: 1_000,
    };
    // Records are read past a valid header: keys and every timestamp.
    if let Ok(headers) = validate_produced(data, &rules) {
        let record_rules = RecordRules::new(&rules, true, 1_000_000);
        let mut pos = 0;
        for h in headers {
            let _ = check_records(&data[pos..pos + h.size], &h, &record_rules);
            pos += h.size;
        }
    }
});
