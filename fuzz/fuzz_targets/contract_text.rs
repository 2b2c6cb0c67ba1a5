//! `cargo +nightly fuzz run contract_text`: see [`evcontract_fuzz::contract::contract_text`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| evcontract_fuzz::contract::contract_text(data));
