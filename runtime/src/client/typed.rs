//! Typed server-event streams for generated clients.

use std::marker::PhantomData;

use tokio::sync::broadcast;

use super::ServerEvent;
use crate::wire::EventError;

/// A contract's server events, decoded from raw ones (generated per namespace).
pub trait DecodeEvent: Sized {
    /// `None` for an event that is not in the contract; an `INVALID_PAYLOAD`
    /// error for a payload that does not match it.
    fn decode(event: &ServerEvent) -> Option<Result<Self, EventError>>;
}

/// A stream of one namespace's server events, decoded into `E`.
///
/// Each stream has its own buffer; one that falls behind loses its oldest
/// events (the connection never waits for a slow consumer).
pub struct Events<E> {
    rx: broadcast::Receiver<ServerEvent>,
    _event: PhantomData<fn() -> E>,
}

impl<E: DecodeEvent> Events<E> {
    /// Decodes the events of a raw subscription.
    pub fn new(rx: broadcast::Receiver<ServerEvent>) -> Self {
        Self {
            rx,
            _event: PhantomData,
        }
    }

    /// The next server event of the contract, decoded; `None` once the
    /// client is gone. Events not in the contract are skipped, and so are
    /// events lost by falling behind.
    pub async fn next(&mut self) -> Option<Result<E, EventError>> {
        loop {
            match self.rx.recv().await {
                Ok(event) => {
                    if let Some(decoded) = E::decode(&event) {
                        return Some(decoded);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
