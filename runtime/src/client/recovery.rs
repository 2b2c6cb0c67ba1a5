//! Where this client stands in each room with history, across
//! reconnections: the client half of the runtime's connection-state
//! recovery (see the server's `history` module and the README's
//! "Delivery guarantees").
//!
//! The client asks for offsets in every handshake (`auth.recovery`); the
//! server then sends each event of a room with history with its
//! [`Offset`] as the extra last argument, and a [`RoomPosition`] on every
//! join, leave and resume. The client keeps the last offset per room, names
//! them when it reconnects (to any node), and drops an event whose offset
//! it already has, so each event of a room is delivered once.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde_json::Value;
use tokio::sync::broadcast;

use super::event::ServerEvent;
use crate::wire::{Offset, RECOVERY_EVENT, RoomPosition};

/// The server events of one client, and its position in each room.
#[derive(Debug)]
pub(crate) struct Inbox {
    pub(crate) events: broadcast::Sender<ServerEvent>,
    /// Room → (epoch, last offset).
    positions: Mutex<BTreeMap<String, (String, u64)>>,
}

impl Inbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            events: broadcast::channel(capacity.max(1)).0,
            positions: Mutex::new(BTreeMap::new()),
        }
    }

    fn positions(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (String, u64)>> {
        self.positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `event` to the subscribers, after noting its position; an
    /// event whose offset this client already has is dropped.
    pub(crate) fn deliver(&self, event: ServerEvent) {
        if event.name == RECOVERY_EVENT {
            if let Ok(position) = serde_json::from_value::<RoomPosition>(event.payload.clone()) {
                let mut positions = self.positions();
                if position.left {
                    positions.remove(&position.room);
                } else if !position.epoch.is_empty() {
                    positions.insert(position.room, (position.epoch, position.offset));
                }
            }
        } else if let Some(offset) = event
            .extra
            .last()
            .and_then(|v| serde_json::from_value::<Offset>(v.clone()).ok())
        {
            let mut positions = self.positions();
            match positions.get_mut(&offset.room) {
                Some((epoch, last)) if *epoch == offset.epoch && offset.offset <= *last => return,
                Some((epoch, last)) => {
                    *epoch = offset.epoch;
                    *last = offset.offset;
                }
                None => {
                    positions.insert(offset.room, (offset.epoch, offset.offset));
                }
            }
        }
        // Never waits: a lagging subscriber loses its oldest events instead.
        // No subscriber at all is fine too.
        let _ = self.events.send(event);
    }

    /// The handshake's `auth.recovery`: the last offset per room.
    pub(crate) fn resume_request(&self) -> Value {
        let rooms: serde_json::Map<String, Value> = self
            .positions()
            .iter()
            .map(|(room, (epoch, offset))| {
                (
                    room.clone(),
                    serde_json::json!({ "epoch": epoch, "offset": offset }),
                )
            })
            .collect();
        Value::Object(rooms)
    }

    /// Room → (epoch, last offset), for [`Client::room_positions`](super::Client::room_positions).
    pub(crate) fn snapshot(&self) -> BTreeMap<String, (String, u64)> {
        self.positions().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, args: Vec<Value>) -> ServerEvent {
        ServerEvent::new(name.to_owned(), args, None)
    }

    #[test]
    fn positions_follow_offsets_and_duplicates_are_dropped() {
        let inbox = Inbox::new(16);
        let mut rx = inbox.events.subscribe();
        let joined =
            json!({"room": "t:1", "epoch": "e", "offset": 4, "recovered": true, "replayed": 0});
        inbox.deliver(event(RECOVERY_EVENT, vec![joined]));
        assert_eq!(
            inbox.resume_request(),
            json!({"t:1": {"epoch": "e", "offset": 4}})
        );
        let at = |n: u64| json!({"room": "t:1", "epoch": "e", "offset": n});
        inbox.deliver(event("said", vec![json!({"n": 5}), at(5)]));
        inbox.deliver(event("said", vec![json!({"n": 5}), at(5)]));
        inbox.deliver(event("said", vec![json!({"n": 4}), at(4)]));
        inbox.deliver(event("said", vec![json!({"n": 6}), at(6)]));
        // A plain event (no offset) passes untouched.
        inbox.deliver(event("said", vec![json!({"n": 0})]));
        let mut got = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            got.push((ev.name, ev.payload));
        }
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[1].1, json!({"n": 5}));
        assert_eq!(got[2].1, json!({"n": 6}));
        assert_eq!(inbox.snapshot()["t:1"], ("e".to_owned(), 6));
        // Another epoch restarts the count; leaving forgets the room.
        inbox.deliver(event(
            "said",
            vec![json!({}), json!({"room": "t:1", "epoch": "f", "offset": 1})],
        ));
        assert_eq!(inbox.snapshot()["t:1"], ("f".to_owned(), 1));
        let left =
            json!({"room": "t:1", "epoch": "f", "offset": 1, "recovered": true, "left": true});
        inbox.deliver(event(RECOVERY_EVENT, vec![left]));
        assert_eq!(inbox.resume_request(), json!({}));
    }
}
