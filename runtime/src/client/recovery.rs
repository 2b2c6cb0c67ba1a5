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
use tokio::sync::{broadcast, mpsc};

use super::event::ServerEvent;
use crate::wire::{Offset, RECOVERY_EVENT, RecoveryGap, RoomPosition};

/// Where the client stands in one room.
#[derive(Debug)]
struct Room {
    epoch: String,
    /// The last offset delivered (or given up on).
    last: u64,
    /// Events that arrived ahead of a missing one, by offset.
    held: BTreeMap<u64, ServerEvent>,
}

impl Room {
    fn new(epoch: String, last: u64) -> Self {
        Self {
            epoch,
            last,
            held: BTreeMap::new(),
        }
    }

    /// Moves the held events that now follow `last` (dropping the ones it
    /// has) to `out`.
    fn drain(&mut self, out: &mut Vec<ServerEvent>) {
        while let Some(entry) = self.held.first_entry() {
            let offset = *entry.key();
            if offset > self.last + 1 {
                break;
            }
            let event = entry.remove();
            if offset == self.last + 1 {
                self.last = offset;
                out.push(event);
            }
        }
    }

    /// Gives up on what is missing: every held event goes to `out`, in
    /// order, and `last` moves past them (and to `at` at least).
    fn flush(&mut self, at: u64, out: &mut Vec<ServerEvent>) {
        let held = std::mem::take(&mut self.held);
        for (offset, event) in held {
            if offset > self.last {
                self.last = offset;
                out.push(event);
            }
        }
        self.last = self.last.max(at);
    }
}

/// The server events of one client, and its position in each room.
#[derive(Debug)]
pub(crate) struct Inbox {
    pub(crate) events: broadcast::Sender<ServerEvent>,
    rooms: Mutex<BTreeMap<String, Room>>,
    /// Rooms where an event arrived ahead of a missing one: the client
    /// asks the server for the missing ones if they do not follow soon.
    gaps: mpsc::UnboundedSender<String>,
    /// `ClientOptions::max_held_events`.
    max_held: usize,
}

impl Inbox {
    /// The inbox, and the receiver of the rooms that have a gap.
    pub(crate) fn new(capacity: usize, max_held: usize) -> (Self, mpsc::UnboundedReceiver<String>) {
        let (gaps, gaps_rx) = mpsc::unbounded_channel();
        let inbox = Self {
            events: broadcast::channel(capacity.max(1)).0,
            rooms: Mutex::new(BTreeMap::new()),
            gaps,
            max_held: max_held.max(1),
        };
        (inbox, gaps_rx)
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `event` to the subscribers in its room's order: an event whose
    /// offset this client already has is dropped, one that arrives ahead of
    /// a missing one is held until the missing one arrives (or the client
    /// gives up on it and tells the app, with a [`RoomPosition`] whose
    /// `recovered` is false).
    pub(crate) fn deliver(&self, event: ServerEvent) {
        let mut out = Vec::new();
        {
            let mut rooms = self.rooms();
            if event.name == RECOVERY_EVENT {
                let position = serde_json::from_value::<RoomPosition>(event.payload.clone()).ok();
                out.push(event);
                if let Some(position) = position {
                    place(&mut rooms, position, &mut out);
                }
            } else if let Some(offset) = event
                .extra
                .last()
                .and_then(|v| serde_json::from_value::<Offset>(v.clone()).ok())
            {
                self.arrive(&mut rooms, offset, event, &mut out);
            } else {
                out.push(event);
            }
        }
        for event in out {
            // Never waits: a lagging subscriber loses its oldest events
            // instead. No subscriber at all is fine too.
            let _ = self.events.send(event);
        }
    }

    fn arrive(
        &self,
        rooms: &mut BTreeMap<String, Room>,
        at: Offset,
        event: ServerEvent,
        out: &mut Vec<ServerEvent>,
    ) {
        let Some(room) = rooms.get_mut(&at.room) else {
            rooms.insert(at.room, Room::new(at.epoch, at.offset));
            out.push(event);
            return;
        };
        if room.epoch != at.epoch {
            // The room's history was lost (a new epoch): what came before
            // this event in it is unknown.
            room.flush(0, out);
            out.push(gap_event(
                &at.room,
                &at.epoch,
                at.offset.saturating_sub(1),
                RecoveryGap::Epoch,
            ));
            *room = Room::new(at.epoch, at.offset);
            out.push(event);
            return;
        }
        if at.offset <= room.last {
            return;
        }
        if at.offset == room.last + 1 {
            room.last = at.offset;
            out.push(event);
            room.drain(out);
            return;
        }
        if room.held.len() >= self.max_held {
            let max = room
                .held
                .keys()
                .next_back()
                .copied()
                .unwrap_or(0)
                .max(at.offset);
            out.push(gap_event(&at.room, &room.epoch, max, RecoveryGap::Dropped));
            room.held.insert(at.offset, event);
            room.flush(max, out);
            return;
        }
        let first_gap = room.held.is_empty();
        room.held.insert(at.offset, event);
        if first_gap {
            // Nobody listening: the client is gone, so is the gap.
            let _ = self.gaps.send(at.room);
        }
    }

    /// The room's epoch and last offset while it holds events ahead of a
    /// missing one.
    pub(crate) fn gap(&self, room: &str) -> Option<(String, u64)> {
        self.rooms()
            .get(room)
            .filter(|r| !r.held.is_empty())
            .map(|r| (r.epoch.clone(), r.last))
    }

    /// Asks again for the missing events of `room` later.
    pub(crate) fn still_missing(&self, room: String) {
        let _ = self.gaps.send(room);
    }

    /// The handshake's `auth.recovery`: the last offset per room.
    pub(crate) fn resume_request(&self) -> Value {
        let rooms: serde_json::Map<String, Value> = self
            .rooms()
            .iter()
            .map(|(name, room)| {
                (
                    name.clone(),
                    serde_json::json!({ "epoch": room.epoch, "offset": room.last }),
                )
            })
            .collect();
        Value::Object(rooms)
    }

    /// Room → (epoch, last offset), for [`Client::room_positions`](super::Client::room_positions).
    pub(crate) fn snapshot(&self) -> BTreeMap<String, (String, u64)> {
        self.rooms()
            .iter()
            .map(|(name, room)| (name.clone(), (room.epoch.clone(), room.last)))
            .collect()
    }
}

/// Applies a position the server sent (or a failed fill): the client's
/// position in the room moves to it, and when events are gone the held
/// ones are delivered after it.
fn place(rooms: &mut BTreeMap<String, Room>, position: RoomPosition, out: &mut Vec<ServerEvent>) {
    if position.left {
        rooms.remove(&position.room);
        return;
    }
    let Some(room) = rooms.get_mut(&position.room) else {
        if !position.epoch.is_empty() {
            rooms.insert(position.room, Room::new(position.epoch, position.offset));
        }
        return;
    };
    if position.epoch.is_empty() || position.epoch == room.epoch {
        if position.recovered {
            room.last = room.last.max(position.offset);
            room.drain(out);
        } else {
            room.flush(position.offset, out);
        }
    } else {
        room.flush(0, out);
        *room = Room::new(position.epoch, position.offset);
    }
}

/// The position that tells the app events of `room` up to `offset` may be
/// missing.
pub(crate) fn gap_event(room: &str, epoch: &str, offset: u64, reason: RecoveryGap) -> ServerEvent {
    position_event(&RoomPosition {
        room: room.to_owned(),
        epoch: epoch.to_owned(),
        offset,
        recovered: false,
        replayed: 0,
        reason: Some(reason),
        left: false,
    })
}

/// A new idempotency key: 32 hex digits, from the process's random hasher
/// keys, the time and a counter (unique per client; not a secret).
pub(crate) fn new_key() -> String {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = (
        std::time::SystemTime::now(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    );
    let state = std::collections::hash_map::RandomState::new();
    format!(
        "{:016x}{:016x}",
        state.hash_one(seed),
        state.hash_one((seed, 1u8))
    )
}

/// `position` as the server event that carries it.
pub(crate) fn position_event(position: &RoomPosition) -> ServerEvent {
    let payload = serde_json::to_value(position).unwrap_or(Value::Null);
    ServerEvent::new(RECOVERY_EVENT.to_owned(), vec![payload], None)
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
        let (inbox, _gaps) = Inbox::new(16, 1024);
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

    #[test]
    fn events_ahead_of_a_missing_one_wait_for_it_or_for_the_gap() {
        let (inbox, mut gaps) = Inbox::new(64, 1024);
        let mut rx = inbox.events.subscribe();
        let at = |n: u64| json!({"room": "t", "epoch": "e", "offset": n});
        let said = |n: u64| event("said", vec![json!(n), at(n)]);
        for n in [1, 3, 4, 2, 3] {
            inbox.deliver(said(n));
        }
        let got: Vec<Value> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| e.payload)
            .collect();
        assert_eq!(got, [json!(1), json!(2), json!(3), json!(4)]);
        // The gap was reported once, and is closed.
        assert_eq!(gaps.try_recv().unwrap(), "t");
        assert!(gaps.try_recv().is_err());
        assert_eq!(inbox.gap("t"), None);
        // 5 never comes: 6 and 7 wait, until the server says 5 is gone.
        inbox.deliver(said(7));
        inbox.deliver(said(6));
        assert_eq!(inbox.gap("t"), Some(("e".to_owned(), 4)));
        assert!(rx.try_recv().is_err());
        let gone = json!({"room": "t", "epoch": "e", "offset": 5, "recovered": false, "reason": "trimmed"});
        inbox.deliver(event(RECOVERY_EVENT, vec![gone]));
        let got: Vec<(String, Value)> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| (e.name, e.payload))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].0, RECOVERY_EVENT);
        assert_eq!((got[1].1.clone(), got[2].1.clone()), (json!(6), json!(7)));
        assert_eq!(inbox.snapshot()["t"], ("e".to_owned(), 7));
    }
}
