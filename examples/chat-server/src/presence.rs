//! Who is in which thread, and the `joined` / `left` announcements.
//!
//! A naive server announces every join and leave to every member: with one
//! account opening many connections and joining and leaving in a loop, each
//! action costs one frame per member, and the work grows with members ×
//! actions. Here:
//!
//! - announcements are per **user**, not per connection: `joined` when the
//!   user's first connection on this server enters the thread, `left` when
//!   its last one goes (by `leave_thread` or by disconnecting); joining
//!   from a second tab announces nothing;
//! - they are **coalesced** per user and thread: a change is announced at
//!   once unless that user was announced in that thread less than an
//!   interval ago; then the net change is announced when the interval ends
//!   (a user who left and came back within it is announced not at all).
//!
//! So a user costs a thread's members at most one frame per interval,
//! however fast its connections join and leave, while different users
//! joining are announced at once. Presence is counted on each server node:
//! a user with connections on two nodes is announced by both.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chat_contract::chat::rooms;
use chat_contract::chat::server::ChatEmitter;
use chat_contract::runtime::server::Target;
use chat_contract::{Joined, Left};
use tokio::time::Instant;

/// Default interval: a user is announced in a thread at most once per it.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_millis(1000);

/// Presence of users in threads on this node, and its announcements.
#[derive(Clone)]
pub(crate) struct Presence {
    inner: Arc<Mutex<State>>,
    interval: Duration,
}

#[derive(Default)]
struct State {
    /// Threads each connection is in.
    sockets: HashMap<String, HashSet<Arc<str>>>,
    /// (thread, user) → that user's presence in that thread.
    users: HashMap<Key, UserInThread>,
}

#[derive(Default)]
struct UserInThread {
    /// The user's connections in the thread.
    connections: usize,
    /// Whether the last announcement said present.
    announced: bool,
    /// When the last announcement was sent.
    last: Option<Instant>,
    /// Whether an announcement is scheduled for the end of the interval.
    scheduled: bool,
}

/// One announcement: (thread, user, present).
type Change = (Arc<str>, Arc<str>, bool);

/// (thread, user).
type Key = (Arc<str>, Arc<str>);

impl Presence {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            inner: Arc::default(),
            interval,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connection `socket` of `user` entered `thread`.
    pub(crate) async fn entered(
        &self,
        emitter: &ChatEmitter,
        socket: &str,
        user: &str,
        thread: &str,
    ) {
        self.changed(emitter, socket, user, thread, Self::enter)
            .await;
    }

    /// Connection `socket` of `user` left `thread`.
    pub(crate) async fn exited(
        &self,
        emitter: &ChatEmitter,
        socket: &str,
        user: &str,
        thread: &str,
    ) {
        self.changed(emitter, socket, user, thread, Self::exit)
            .await;
    }

    /// Records a change with `record` and announces what is due.
    async fn changed(
        &self,
        emitter: &ChatEmitter,
        socket: &str,
        user: &str,
        thread: &str,
        record: fn(&mut State, &str, &Key) -> bool,
    ) {
        let due = {
            let mut state = self.state();
            let key: Key = (thread.into(), user.into());
            if !record(&mut state, socket, &key) {
                return;
            }
            self.due(&mut state, key, emitter, Instant::now())
        };
        announce(emitter, due).await;
    }

    /// Connection `socket` of `user` went away: it left all its threads.
    pub(crate) async fn disconnected(&self, emitter: &ChatEmitter, socket: &str, user: &str) {
        let due = {
            let mut state = self.state();
            let threads = state.sockets.get(socket).cloned().unwrap_or_default();
            let now = Instant::now();
            let mut due = Vec::new();
            for thread in threads {
                let key = (thread, Arc::<str>::from(user));
                if Self::exit(&mut state, socket, &key) {
                    due.extend(self.due(&mut state, key, emitter, now));
                }
            }
            due
        };
        announce(emitter, due).await;
    }

    /// Records that `socket` entered the key's thread; `false` when it was in.
    fn enter(state: &mut State, socket: &str, key: &Key) -> bool {
        if !state
            .sockets
            .entry(socket.to_owned())
            .or_default()
            .insert(key.0.clone())
        {
            return false;
        }
        state.users.entry(key.clone()).or_default().connections += 1;
        true
    }

    /// Records that `socket` left the key's thread; `false` when it was not in.
    fn exit(state: &mut State, socket: &str, key: &Key) -> bool {
        let Some(threads) = state.sockets.get_mut(socket) else {
            return false;
        };
        if !threads.remove(&key.0) {
            return false;
        }
        if threads.is_empty() {
            state.sockets.remove(socket);
        }
        if let Some(user) = state.users.get_mut(key) {
            user.connections = user.connections.saturating_sub(1);
        }
        true
    }

    /// The announcement due now for `key`, if its last one is at least an
    /// interval old; otherwise schedules one for the end of the interval,
    /// once (it then announces the net change).
    fn due(&self, state: &mut State, key: Key, emitter: &ChatEmitter, now: Instant) -> Vec<Change> {
        let Some(user) = state.users.get_mut(&key) else {
            return Vec::new();
        };
        if user.scheduled {
            return Vec::new();
        }
        match user.last {
            Some(last) if now < last + self.interval => {
                user.scheduled = true;
                let (this, emitter, at) = (self.clone(), emitter.clone(), last + self.interval);
                tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    let due = {
                        let mut state = this.state();
                        if let Some(user) = state.users.get_mut(&key) {
                            user.scheduled = false;
                        }
                        Self::settle(&mut state, key, Instant::now())
                    };
                    announce(&emitter, due).await;
                });
                Vec::new()
            }
            _ => Self::settle(state, key, now),
        }
    }

    /// The announcement that brings `key` up to date, if its presence
    /// changed since the last one; forgets a user who is gone and announced
    /// gone.
    fn settle(state: &mut State, key: Key, now: Instant) -> Vec<Change> {
        let Some(user) = state.users.get_mut(&key) else {
            return Vec::new();
        };
        let present = user.connections > 0;
        let mut due = Vec::new();
        if present != user.announced {
            user.announced = present;
            user.last = Some(now);
            due.push((key.0.clone(), key.1.clone(), present));
        }
        if !present && !user.announced && !user.scheduled {
            state.users.remove(&key);
        }
        due
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let state = self.state();
        (state.sockets.len(), state.users.len())
    }
}

/// Sends each change to its thread's room. A change that does not reach
/// every member was logged and counted by the runtime.
async fn announce(emitter: &ChatEmitter, due: Vec<Change>) {
    for (thread, user, present) in due {
        let room = Target::room(rooms::thread(&thread));
        let (thread_id, user_id) = (thread.to_string(), user.to_string());
        let sent = if present {
            emitter.joined(room, &Joined { thread_id, user_id }).await
        } else {
            emitter.left(room, &Left { thread_id, user_id }).await
        };
        if let Err(err) = sent {
            tracing::debug!(%err, "presence announcement not delivered to every member");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What settling (thread `t`, `user`) announces now.
    fn settle(p: &Presence, user: &str) -> Vec<bool> {
        Presence::settle(&mut p.state(), ("t".into(), user.into()), Instant::now())
            .into_iter()
            .map(|(_, _, present)| present)
            .collect()
    }

    fn enter(p: &Presence, socket: &str, user: &str) {
        Presence::enter(&mut p.state(), socket, &("t".into(), user.into()));
    }

    fn exit(p: &Presence, socket: &str, user: &str) {
        Presence::exit(&mut p.state(), socket, &("t".into(), user.into()));
    }

    #[test]
    fn announcements_are_per_user_and_net() {
        let p = Presence::new(DEFAULT_INTERVAL);
        // Two tabs of ann: announced once.
        enter(&p, "s1", "ann");
        enter(&p, "s2", "ann");
        assert_eq!(settle(&p, "ann"), [true]);
        enter(&p, "s3", "bob");
        assert_eq!(settle(&p, "bob"), [true]);
        // One of ann's tabs leaves: she is still there.
        exit(&p, "s1", "ann");
        assert!(settle(&p, "ann").is_empty());
        // Churn between two settlements nets out to nothing.
        for _ in 0..100 {
            exit(&p, "s2", "ann");
            enter(&p, "s2", "ann");
        }
        assert!(settle(&p, "ann").is_empty());
        // Her last tab leaves: one `left`.
        exit(&p, "s2", "ann");
        assert_eq!(settle(&p, "ann"), [false]);
        exit(&p, "s3", "bob");
        assert_eq!(settle(&p, "bob"), [false]);
        // Nothing is kept for users who are gone.
        assert_eq!(p.tracked(), (0, 0));
    }
}
