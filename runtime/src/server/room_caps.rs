//! Member caps of the contract's rooms (`maxMembers`), counted on the node
//! that holds the sockets.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::spec::{NamespaceSpec, RoomSpec};

/// The sockets in each capped room of one namespace on this node. Only
/// rooms of a pattern with `maxMembers` are counted, and only while they
/// have a member, so the map follows the occupied rooms.
#[derive(Debug)]
pub(crate) struct RoomCaps {
    patterns: Vec<(&'static RoomSpec, usize)>,
    members: Mutex<HashMap<String, usize>>,
}

impl RoomCaps {
    /// The caps of `spec`'s rooms; `None` when no room has one.
    pub(crate) fn of(spec: &'static NamespaceSpec) -> Option<Self> {
        let patterns: Vec<_> = spec
            .rooms
            .iter()
            .filter_map(|room| room.max_members.map(|max| (room, max)))
            .collect();
        (!patterns.is_empty()).then(|| Self {
            patterns,
            members: Mutex::new(HashMap::new()),
        })
    }

    fn cap_of(&self, room: &str) -> Option<usize> {
        self.patterns
            .iter()
            .find(|(spec, _)| spec.matches(room))
            .map(|&(_, max)| max)
    }

    /// Counts one more member of `room`, or `Err(max)` when it is full.
    pub(crate) fn enter(&self, room: &str) -> Result<(), usize> {
        let Some(max) = self.cap_of(room) else {
            return Ok(());
        };
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        let count = members.entry(room.to_owned()).or_insert(0);
        if *count >= max {
            if *count == 0 {
                members.remove(room);
            }
            return Err(max);
        }
        *count += 1;
        Ok(())
    }

    /// Counts one member of `room` fewer.
    pub(crate) fn leave(&self, room: &str) {
        if self.cap_of(room).is_none() {
            return;
        }
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = members.get_mut(room) {
            *count -= 1;
            if *count == 0 {
                members.remove(room);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::spec::AuthMode;

    static SPEC: NamespaceSpec = NamespaceSpec {
        path: "/t",
        auth: AuthMode::Optional,
        client_events: &[],
        server_events: &[],
        contract: None,
        rooms: &[
            RoomSpec {
                name: "thread",
                pattern: "thread:{id}",
                max_members: Some(2),
                history: None,
            },
            RoomSpec {
                name: "lobby",
                pattern: "lobby:{id}",
                max_members: None,
                history: None,
            },
        ],
    };

    #[test]
    fn capped_rooms_fill_and_empty() {
        let caps = RoomCaps::of(&SPEC).unwrap();
        assert_eq!(caps.enter("thread:a"), Ok(()));
        assert_eq!(caps.enter("thread:a"), Ok(()));
        assert_eq!(caps.enter("thread:a"), Err(2));
        assert_eq!(caps.enter("thread:b"), Ok(()));
        for _ in 0..10 {
            assert_eq!(caps.enter("lobby:a"), Ok(()));
            assert_eq!(caps.enter("other"), Ok(()));
        }
        caps.leave("thread:a");
        assert_eq!(caps.enter("thread:a"), Ok(()));
        caps.leave("thread:a");
        caps.leave("thread:a");
        caps.leave("thread:b");
        caps.leave("lobby:a");
        assert!(caps.members.lock().unwrap().is_empty());
    }

    #[test]
    fn no_cap_no_counting() {
        static OPEN: NamespaceSpec = NamespaceSpec { rooms: &[], ..SPEC };
        assert!(RoomCaps::of(&OPEN).is_none());
    }
}
