//! Serves version 1.1 of the notes contract (`notes.v1_1.contract.json`) on
//! `HOST`:`PORT` (default 127.0.0.1:3000), for clients generated from an
//! older version: `check-ts-cross-version.sh` runs a 1.0 TypeScript client
//! against it.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let listener = match tokio::net::TcpListener::bind(format!("{host}:{port}")).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {host}:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("notes 1.1 listening on http://{host}:{port}");
    match build_script_example::serve_v1_1(listener).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
