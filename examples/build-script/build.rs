//! Generates the Rust of `notes.contract.json` into `OUT_DIR` at build time
//! (see `src/lib.rs` for the `include!`). A contract error fails the build
//! with the file, line:column and JSON path of each problem.
//!
//! For `check-rebuild.sh` (run by the test command): `NOTES_CONTRACT` names
//! another contract file, to show that a change to the contract changes the
//! build; `NOTES_CLIENT=off` generates the server alone.

fn main() {
    println!("cargo:rerun-if-env-changed=NOTES_CONTRACT");
    println!("cargo:rerun-if-env-changed=NOTES_CLIENT");
    let contract =
        std::env::var("NOTES_CONTRACT").unwrap_or_else(|_| "notes.contract.json".to_owned());
    let client = std::env::var("NOTES_CLIENT").map_or(true, |v| v != "off");
    evcontract::Builder::new()
        .contract(contract)
        .server(true)
        .client(client)
        .compile();
}
