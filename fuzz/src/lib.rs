//! Fuzz targets for evcontract, as plain functions.
//!
//! Each target is a function from bytes to nothing that panics on a bug, so
//! that the same body runs under libFuzzer (`fuzz_targets/*.rs`, through
//! `cargo +nightly fuzz run <target>`) and as a plain test on stable that
//! replays the committed corpus (`cargo test --manifest-path
//! fuzz/Cargo.toml --no-default-features --lib`):
//!
//! - [`contract::contract_text`]: arbitrary bytes as a contract file's text
//!   (as `.json` and as `.yaml`) through `evcontract::load` and, when it
//!   loads, the generation;
//! - [`structured::contract_structured`]: contracts built by `arbitrary`
//!   (namespaces, events, JSON Schema payloads from the supported subset,
//!   and some junk), through the same path;
//! - [`gateway::gateway_inbound`]: one WebSocket text frame to a real gateway
//!   serving the chat contract's generated glue, in process; afterwards a
//!   clean connection must still get its ack.
//!
//! Panics that evcontract catches itself (typify's, under `catch_unwind`)
//! are expected; any other panic, on any thread, is a crash ([`panics`]).

pub mod contract;
pub mod gateway;
pub mod panics;
pub mod structured;

#[cfg(test)]
mod replay;
