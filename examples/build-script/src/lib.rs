//! Example: the `notes` contract generated from `build.rs` (nothing checked
//! in), included as a module, and its server implemented.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use api::notes::server::{NotesEmitter, NotesHandler};
use evcontract_runtime::EventError;
use evcontract_runtime::server::{Gateway, ServerConfig, ServerError, SocketContext, Target};

/// The generated code of `notes.contract.json`: payload types at the top,
/// the namespace in `api::notes` (event names, rooms, server and client).
// Payload fields carry docs only where the contract describes them.
#[allow(missing_docs)]
pub mod api {
    include!(concat!(env!("OUT_DIR"), "/notes.rs"));
}

/// Version 1.1 of the contract (`notes.v1_1.contract.json`: notes say who
/// wrote them), server side only: what a server one release ahead of its
/// deployed clients runs.
#[allow(missing_docs)]
pub mod api_v1_1 {
    include!(concat!(env!("OUT_DIR"), "/v1_1/notes.rs"));
}

/// The generated code of `formats.contract.json` (dates, a UUID, an email
/// and a pattern), whose types are made of chrono, uuid and regress: this
/// crate reaches them through the runtime's `formats` feature.
#[allow(missing_docs)]
pub mod stamps_api {
    include!(concat!(env!("OUT_DIR"), "/stamps/stamps.rs"));
}

/// The notes server: numbers each note and tells every client about it.
#[derive(Debug, Default)]
pub struct Notes {
    last_id: AtomicU64,
}

impl NotesHandler for Notes {
    async fn add_note(
        &self,
        ctx: &SocketContext,
        payload: api::AddNote,
    ) -> Result<api::AddNoteAck, EventError> {
        let id = self.last_id.fetch_add(1, Ordering::Relaxed) + 1;
        let added = api::NoteAdded {
            id: id as i64,
            text: payload.text.to_string(),
        };
        NotesEmitter::of(ctx)
            .note_added(Target::All, &added)
            .await
            .map_err(|e| EventError::internal(e.to_string()))?;
        Ok(api::AddNoteAck {
            id: std::num::NonZeroU64::new(id).ok_or_else(|| EventError::internal("id 0"))?,
        })
    }
}

/// Serves the notes namespace on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener) -> Result<(), ServerError> {
    let gateway = Gateway::build(ServerConfig::new()).await?;
    api::notes::server::register(&gateway, Notes::default()).await?;
    gateway
        .serve_listener(listener, std::future::pending())
        .await
}

/// A 1.1 server: every note signed with its author (the user id when the
/// connection is authenticated, `anonymous` otherwise).
#[derive(Debug, Default)]
pub struct SignedNotes {
    last_id: AtomicU64,
}

impl api_v1_1::notes::server::NotesHandler for SignedNotes {
    async fn add_note(
        &self,
        ctx: &SocketContext,
        payload: api_v1_1::AddNote,
    ) -> Result<api_v1_1::AddNoteAck, EventError> {
        let id = self.last_id.fetch_add(1, Ordering::Relaxed) + 1;
        let author = ctx.user_id().unwrap_or("anonymous").to_owned();
        let added = api_v1_1::NoteAdded {
            id: id as i64,
            text: payload.text.to_string(),
            author: Some(author.clone()),
        };
        api_v1_1::notes::server::NotesEmitter::of(ctx)
            .note_added(Target::All, &added)
            .await
            .map_err(|e| EventError::internal(e.to_string()))?;
        Ok(api_v1_1::AddNoteAck {
            id: std::num::NonZeroU64::new(id).ok_or_else(|| EventError::internal("id 0"))?,
            author: Some(author),
        })
    }
}

/// Serves version 1.1 of the notes namespace on `listener` until the task
/// is dropped.
pub async fn serve_v1_1(listener: tokio::net::TcpListener) -> Result<(), ServerError> {
    let gateway = Gateway::build(ServerConfig::new()).await?;
    api_v1_1::notes::server::register(&gateway, SignedNotes::default()).await?;
    gateway
        .serve_listener(listener, std::future::pending())
        .await
}
