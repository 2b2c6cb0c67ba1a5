//! The [`Dispatch`] trait that generated glue implements: the one call from
//! the runtime into a contract's handlers.

use super::context::SocketContext;
use super::emitter::Emitter;
use super::spec::{BoxFuture, EventSpec};
use crate::wire::{AckData, EventError};

/// Implemented by generated glue: decode the payload and call the user's handler.
///
/// The runtime has already checked, before [`Dispatch::dispatch`] runs, that the
/// event is in the contract, the caller is allowed (auth), within its rate limit
/// and that the payload matches `event.schema`. A panic in any of these methods
/// is caught and logged; in `dispatch` it answers `INTERNAL` and the connection
/// stays up.
pub trait Dispatch: Send + Sync + 'static {
    /// Handles one event whose payload was already validated against
    /// `event.schema`. `payload` is its JSON text, borrowed from the frame
    /// (`null` when the client sent none): decode it before the returned
    /// future (see [`decode_text`](crate::wire::decode_text)). Returns the
    /// serialized ack data (see [`encode_ack`](crate::wire::encode_ack);
    /// `None` for events without ack data) or the error to send back.
    fn dispatch(
        &self,
        ctx: SocketContext,
        event: &'static EventSpec,
        payload: &str,
    ) -> BoxFuture<'static, Result<AckData, EventError>>;

    /// Called once per connection, after the runtime recorded the client's
    /// metadata and joined it to its rooms. Events may already be handled
    /// concurrently with this call.
    fn on_connect(&self, ctx: SocketContext) -> BoxFuture<'static, ()> {
        let _ = ctx;
        Box::pin(async {})
    }

    /// Called once per connection when it goes away, before its metadata is
    /// removed (the context still reports its rooms and metadata).
    fn on_disconnect(&self, ctx: SocketContext) -> BoxFuture<'static, ()> {
        let _ = ctx;
        Box::pin(async {})
    }

    /// Called once when the namespace is mounted, with its emitter (for
    /// example to start periodic server pushes).
    fn after_init(&self, emitter: Emitter) -> BoxFuture<'static, ()> {
        let _ = emitter;
        Box::pin(async {})
    }
}
