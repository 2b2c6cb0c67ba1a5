//! Room history: connection-state recovery owned by the runtime
//! (socketioxide has none).
//!
//! Every event sent to a whole room whose contract pattern declares
//! `history` gets the room's next offset and is kept (at most `size`
//! events, each for `ttlSeconds`) before it is delivered. Clients that ask
//! for it in their handshake (`auth.recovery`) get the offset as the
//! event's extra last argument ([`Offset`]), and a [`RoomPosition`] when
//! they join such a room; after a reconnection they name the last offset
//! they have per room, and the runtime sends what they missed, in order,
//! re-joins them, and tells them per room whether anything is gone.
//!
//! No gap and no duplicate between replay and live: the room's log is
//! locked while an event is numbered, kept and handed to the sockets'
//! queues, and while a returning socket is sent its missed events and put
//! back in the room, so every later event reaches it after its replay.
//!
//! On one node the store is this node's memory. On the Redis adapter it is
//! Redis (`history_redis`): any node numbers, keeps and replays the
//! events of any room, and the client puts events of two nodes back in
//! order (see `FILL_EVENT`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use super::spec::{HistorySpec, NamespaceSpec, RoomSpec};
use crate::wire::{Offset, RecoveryGap, RoomPosition};

#[cfg(feature = "redis")]
pub(crate) use super::history_redis::SharedHistory;

/// The room a member of `room` joins beside it: one for the sockets that
/// asked for offsets, one for the others. An event kept in the room's
/// history is sent once to each, with the offset and without; two plain
/// broadcasts, where "the room except the sockets with offsets" would make
/// socketioxide build and probe a set of every member per event (measured:
/// a fifth more CPU per delivery at 400 members).
pub(crate) fn delivery_room(room: &str, offsets: bool) -> String {
    if offsets {
        format!("evcontract:offsets:{room}")
    } else {
        format!("evcontract:plain:{room}")
    }
}

/// How often (in room logs created) logs that hold nothing and were idle
/// for their whole time to live are dropped, so the map follows the rooms
/// in use.
const SWEEP_EVERY: u64 = 1024;

/// The history of one namespace's rooms on this node.
#[derive(Debug)]
pub(crate) struct HistoryStore {
    patterns: Vec<(&'static RoomSpec, HistorySpec)>,
    rooms: Mutex<HashMap<String, Arc<Mutex<RoomLog>>>>,
    created: AtomicU64,
    /// The store every node shares, on the Redis adapter (the rooms' logs
    /// here are then unused).
    #[cfg(feature = "redis")]
    shared: Option<SharedHistory>,
}

impl HistoryStore {
    /// The store of `spec`'s rooms; `None` when no room has history.
    pub(crate) fn of(spec: &'static NamespaceSpec) -> Option<Self> {
        let patterns: Vec<_> = spec
            .rooms
            .iter()
            .filter_map(|room| room.history.map(|h| (room, h)))
            .collect();
        (!patterns.is_empty()).then(|| Self {
            patterns,
            rooms: Mutex::new(HashMap::new()),
            created: AtomicU64::new(0),
            #[cfg(feature = "redis")]
            shared: None,
        })
    }

    /// Keeps the history in the store every node shares.
    #[cfg(feature = "redis")]
    pub(crate) fn shared_by_nodes(mut self, shared: Option<SharedHistory>) -> Self {
        self.shared = shared;
        self
    }

    /// The store every node shares, with `room`'s settings, when `room`
    /// has history and the gateway is on the Redis adapter.
    #[cfg(feature = "redis")]
    pub(crate) fn shared(&self, room: &str) -> Option<(&SharedHistory, HistorySpec)> {
        Some((self.shared.as_ref()?, self.spec_for(room)?))
    }

    /// The history settings of `room`, when its pattern has any.
    pub(crate) fn spec_for(&self, room: &str) -> Option<HistorySpec> {
        self.patterns
            .iter()
            .find(|(spec, _)| spec.matches(room))
            .map(|&(_, h)| h)
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Arc<Mutex<RoomLog>>>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The log of `room` on this node, created when it has none (`None`:
    /// no history for this room, or the history is shared by the nodes).
    pub(crate) fn log(&self, room: &str) -> Option<Arc<Mutex<RoomLog>>> {
        #[cfg(feature = "redis")]
        if self.shared.is_some() {
            return None;
        }
        let spec = self.spec_for(room)?;
        let mut rooms = self.rooms();
        if let Some(log) = rooms.get(room) {
            return Some(log.clone());
        }
        if self.created.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            let now = Instant::now();
            rooms.retain(|_, log| Arc::strong_count(log) > 1 || !lock(log).idle(now));
        }
        let log = Arc::new(Mutex::new(RoomLog::new(spec)));
        rooms.insert(room.to_owned(), log.clone());
        Some(log)
    }

    /// The log of `room` if it has one now (resuming never creates one: a
    /// room whose log is gone is reported, not silently restarted).
    pub(crate) fn existing(&self, room: &str) -> Option<Arc<Mutex<RoomLog>>> {
        self.rooms().get(room).cloned()
    }
}

/// Locks a room log (a poisoned lock still holds a consistent log: every
/// change to it is one push or pop).
pub(crate) fn lock(log: &Mutex<RoomLog>) -> MutexGuard<'_, RoomLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The kept events of one room.
#[derive(Debug)]
pub(crate) struct RoomLog {
    epoch: Arc<str>,
    /// The offset of the last event (0: none yet).
    last: u64,
    entries: VecDeque<Entry>,
    size: usize,
    ttl: Duration,
    /// Why the newest dropped event went.
    dropped: Option<RecoveryGap>,
    /// When the last event was kept.
    touched: Instant,
}

#[derive(Debug)]
struct Entry {
    offset: u64,
    at: Instant,
    event: Box<str>,
    payload: Box<RawValue>,
}

impl RoomLog {
    fn new(spec: HistorySpec) -> Self {
        Self {
            epoch: crate::wire::new_epoch().into(),
            last: 0,
            entries: VecDeque::new(),
            size: spec.size.max(1) as usize,
            ttl: Duration::from_secs(u64::from(spec.ttl_seconds.max(1))),
            dropped: None,
            touched: Instant::now(),
        }
    }

    /// Drops the events older than the time to live.
    fn expire(&mut self, now: Instant) {
        while self
            .entries
            .front()
            .is_some_and(|e| now.duration_since(e.at) > self.ttl)
        {
            self.entries.pop_front();
            self.dropped = Some(RecoveryGap::Expired);
        }
    }

    /// Whether the log holds nothing and was idle for its time to live.
    fn idle(&mut self, now: Instant) -> bool {
        self.expire(now);
        self.entries.is_empty() && now.duration_since(self.touched) > self.ttl
    }

    /// Keeps `event` of `room` with its payload and returns its offset.
    pub(crate) fn push(&mut self, room: &str, event: &str, payload: Box<RawValue>) -> Offset {
        let now = Instant::now();
        self.expire(now);
        if self.entries.len() >= self.size {
            self.entries.pop_front();
            self.dropped = Some(RecoveryGap::Trimmed);
        }
        self.last += 1;
        self.touched = now;
        self.entries.push_back(Entry {
            offset: self.last,
            at: now,
            event: event.into(),
            payload,
        });
        Offset {
            room: room.to_owned(),
            epoch: self.epoch.to_string(),
            offset: self.last,
        }
    }

    /// Where the room stands: its epoch and last offset.
    pub(crate) fn position(&self, room: &str, recovered: bool) -> RoomPosition {
        RoomPosition {
            room: room.to_owned(),
            epoch: self.epoch.to_string(),
            offset: self.last,
            recovered,
            replayed: 0,
            reason: None,
            left: false,
        }
    }

    /// The events after `offset` of `epoch`, oldest first, or why some of
    /// them are gone.
    pub(crate) fn since(
        &mut self,
        epoch: &str,
        offset: u64,
    ) -> Result<Vec<(&str, &RawValue, u64)>, RecoveryGap> {
        self.expire(Instant::now());
        if epoch != &*self.epoch || offset > self.last {
            return Err(RecoveryGap::Epoch);
        }
        let oldest = self.entries.front().map_or(self.last + 1, |e| e.offset);
        if offset + 1 < oldest {
            return Err(self.dropped.unwrap_or(RecoveryGap::Trimmed));
        }
        Ok(self
            .entries
            .iter()
            .filter(|e| e.offset > offset)
            .map(|e| (&*e.event, &*e.payload, e.offset))
            .collect())
    }

    /// The epoch.
    #[cfg(test)]
    fn epoch(&self) -> &str {
        &self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(n: u64) -> Box<RawValue> {
        RawValue::from_string(n.to_string()).unwrap()
    }

    fn log(size: u32, ttl_seconds: u32) -> RoomLog {
        RoomLog::new(HistorySpec { size, ttl_seconds })
    }

    #[test]
    fn offsets_count_from_one_and_replay_what_follows() {
        let mut log = log(3, 60);
        let epoch = log.epoch().to_owned();
        assert_eq!(log.since(&epoch, 0).unwrap().len(), 0);
        for n in 1..=3 {
            assert_eq!(log.push("r", "ev", raw(n)).offset, n);
        }
        let after_1: Vec<u64> = log.since(&epoch, 1).unwrap().iter().map(|e| e.2).collect();
        assert_eq!(after_1, [2, 3]);
        assert!(log.since(&epoch, 3).unwrap().is_empty());
        // A fourth pushes the first out: from 0 is a gap, from 1 is not.
        log.push("r", "ev", raw(4));
        assert_eq!(log.since(&epoch, 0).unwrap_err(), RecoveryGap::Trimmed);
        assert_eq!(log.since(&epoch, 1).unwrap().len(), 3);
        // Another epoch, or an offset from the future: the history is not
        // the one the client saw.
        assert_eq!(log.since("other", 1).unwrap_err(), RecoveryGap::Epoch);
        assert_eq!(log.since(&epoch, 99).unwrap_err(), RecoveryGap::Epoch);
    }

    #[test]
    fn expired_events_are_a_gap_with_their_reason() {
        let mut log = log(10, 1);
        let epoch = log.epoch().to_owned();
        log.push("r", "ev", raw(1));
        log.entries[0].at -= Duration::from_secs(2);
        assert_eq!(log.since(&epoch, 0).unwrap_err(), RecoveryGap::Expired);
        // Nothing missed: no gap, even with everything expired.
        assert!(log.since(&epoch, 1).unwrap().is_empty());
        assert_ne!(crate::wire::new_epoch(), crate::wire::new_epoch());
    }
}
