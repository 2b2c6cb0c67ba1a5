//! `cargo +nightly fuzz run contract_structured`: see [`evcontract_fuzz::structured::contract_structured`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| evcontract_fuzz::structured::contract_structured(data));
