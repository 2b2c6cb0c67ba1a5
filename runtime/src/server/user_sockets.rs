//! The per-user socket cap of a namespace on one node
//! ([`ServerConfig::max_sockets_per_user`](super::ServerConfig::max_sockets_per_user)).
//!
//! One account must not be able to open sockets without bound: each socket
//! may join rooms, and every join or leave can cost work for every member
//! of the room, so an unbounded number of sockets of one user makes the
//! server's work grow with its square.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Default most sockets one user may have in one namespace on one node: 32.
pub const DEFAULT_MAX_SOCKETS_PER_USER: usize = 32;

/// Sockets per authenticated user of one namespace on this node. The map
/// holds only users with a socket, so it follows the connected users.
#[derive(Debug, Default)]
pub(crate) struct UserSockets {
    counts: Mutex<HashMap<Arc<str>, usize>>,
}

impl UserSockets {
    /// A place for one more socket of `user`, or `None` when it has `max`.
    pub(crate) fn take(self: &Arc<Self>, user: &Arc<str>, max: usize) -> Option<UserSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(user.clone()).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(UserSlot {
            owner: self.clone(),
            user: user.clone(),
        })
    }

    #[cfg(test)]
    fn count(&self, user: &str) -> usize {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(user).copied().unwrap_or(0)
    }
}

/// One socket's place in [`UserSockets`], given back when the socket's
/// state is dropped (socketioxide drops it with the socket).
#[derive(Debug)]
pub(crate) struct UserSlot {
    owner: Arc<UserSockets>,
    user: Arc<str>,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = self
            .owner
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_user_and_given_back() {
        let sockets = Arc::new(UserSockets::default());
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let held: Vec<_> = (0..3).map(|_| sockets.take(&a, 3).unwrap()).collect();
        assert!(sockets.take(&a, 3).is_none());
        let other = sockets.take(&b, 3).unwrap();
        drop(held);
        assert_eq!(sockets.count("a"), 0);
        assert!(sockets.counts.lock().unwrap().get("a").is_none());
        assert!(sockets.take(&a, 3).is_some());
        drop(other);
        assert_eq!(sockets.count("b"), 0);
    }
}
