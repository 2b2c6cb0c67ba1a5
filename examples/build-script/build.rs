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
    // The next version of the contract (an optional property added to a
    // server event and to an ack), beside the current one: the cross-version
    // test runs a 1.1 server against a 1.0 client.
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    evcontract::Builder::new()
        .contract("notes.v1_1.contract.json")
        .server(true)
        .client(false)
        .out_dir(out.join("v1_1"))
        .compile();
    // Every string format and a pattern: chrono, uuid and regress reached
    // through the runtime (feature `formats`), no dependency of this crate.
    evcontract::Builder::new()
        .contract("formats.contract.json")
        .server(true)
        .client(true)
        .out_dir(out.join("stamps"))
        .compile();
}
