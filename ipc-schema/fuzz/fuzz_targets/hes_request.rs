//! `HesRequest` (HES link payload) from arbitrary bytes: anything that decodes re-encodes within its `MaxSize` bound and
//! decodes back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = atoll_fuzz::postcard_round_trip::<ipc_schema::hes::HesRequest>(data);
});
