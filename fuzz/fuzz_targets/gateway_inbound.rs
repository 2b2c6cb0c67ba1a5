//! `cargo +nightly fuzz run gateway_inbound`: see [`evcontract_fuzz::gateway::gateway_inbound`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| evcontract_fuzz::gateway::gateway_inbound(data));
