//! Retried sends run once: an acked client event that carries an
//! idempotency key (`{"idempotencyKey": "…"}` as its extra last argument)
//! runs its handler at most once per key, per user, within a window; a
//! retry gets the first answer.
//!
//! On one node the keys live in this node's memory (at most
//! `keys_per_user` per user, the oldest forgotten first). On the Redis
//! adapter they live in Redis (`SET NX PX`), so a retry that reaches
//! another node is answered too. A retry that arrives while the first is
//! still running gets `UNAVAILABLE` (retry later); so does any keyed event
//! while Redis cannot be reached: at most once wins over availability.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

/// Default [`ServerConfig::idempotency_window`](super::ServerConfig::idempotency_window): 10 minutes.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(600);

/// Default [`ServerConfig::idempotency_keys_per_user`](super::ServerConfig::idempotency_keys_per_user): 1,000.
pub const DEFAULT_IDEMPOTENCY_KEYS_PER_USER: usize = 1000;

/// Longest idempotency key accepted, in bytes; a longer one is refused
/// with `INVALID_PAYLOAD`.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;

/// What to do with a keyed event.
pub(crate) enum Claim {
    /// First time: run the handler, then [`Keys::settle`] the key.
    Run,
    /// Done before: this is the answer (the whole ack envelope).
    Answer(Box<RawValue>),
    /// Running now, or the store cannot be reached: answer `UNAVAILABLE`.
    Busy(&'static str),
}

/// The idempotency keys of one namespace.
pub(crate) struct Keys {
    window: Duration,
    per_user: usize,
    local: Mutex<HashMap<String, UserKeys>>,
    #[cfg(feature = "redis")]
    shared: Option<SharedKeys>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("window", &self.window)
            .field("per_user", &self.per_user)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct UserKeys {
    slots: HashMap<String, Slot>,
    /// Keys in the order they were claimed, with when.
    order: VecDeque<(String, Instant)>,
}

enum Slot {
    Running,
    Done(Box<RawValue>),
}

impl Keys {
    pub(crate) fn new(window: Duration, per_user: usize) -> Self {
        Self {
            window: window.max(Duration::from_millis(1)),
            per_user: per_user.max(1),
            local: Mutex::new(HashMap::new()),
            #[cfg(feature = "redis")]
            shared: None,
        }
    }

    /// Keeps the keys in Redis, shared by the nodes.
    #[cfg(feature = "redis")]
    pub(crate) fn shared_by_nodes(mut self, shared: Option<SharedKeys>) -> Self {
        self.shared = shared;
        self
    }

    /// Claims `key` of `event` for `scope` (the user, or the anonymous
    /// client's address).
    pub(crate) async fn claim(&self, scope: &str, event: &str, key: &str) -> Claim {
        let id = format!("{event}\u{0}{key}");
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return shared.claim(scope, &id, self.window).await;
        }
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let user = local.entry(scope.to_owned()).or_default();
        // Forget what is older than the window, then the oldest past the
        // per-user bound.
        while let Some((old, at)) = user.order.front() {
            if now.duration_since(*at) <= self.window && user.order.len() < self.per_user {
                break;
            }
            user.slots.remove(old);
            user.order.pop_front();
        }
        match user.slots.get(&id) {
            Some(Slot::Running) => {
                Claim::Busy("the same request (same idempotency key) is still running")
            }
            Some(Slot::Done(answer)) => Claim::Answer(answer.clone()),
            None => {
                user.slots.insert(id.clone(), Slot::Running);
                user.order.push_back((id, now));
                Claim::Run
            }
        }
    }

    /// Records the answer of a claimed key (`None`: forget the key, so a
    /// retry runs the handler: it did nothing that must not be repeated).
    pub(crate) async fn settle(
        &self,
        scope: &str,
        event: &str,
        key: &str,
        answer: Option<Box<RawValue>>,
    ) {
        let id = format!("{event}\u{0}{key}");
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            shared.settle(scope, &id, answer, self.window).await;
            return;
        }
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(user) = local.get_mut(scope) else {
            return;
        };
        match answer {
            Some(answer) => {
                if let Some(slot) = user.slots.get_mut(&id) {
                    *slot = Slot::Done(answer);
                }
            }
            None => {
                user.slots.remove(&id);
                user.order.retain(|(k, _)| *k != id);
            }
        }
        if user.slots.is_empty() {
            local.remove(scope);
        }
    }
}

/// The keys in Redis.
#[cfg(feature = "redis")]
#[derive(Clone)]
pub(crate) struct SharedKeys {
    client: fred::clients::SubscriberClient,
    /// `<prefix>:idempotency:<namespace>:`
    prefix: std::sync::Arc<str>,
}

#[cfg(feature = "redis")]
impl SharedKeys {
    pub(crate) fn new(client: fred::clients::SubscriberClient, prefix: &str, ns: &str) -> Self {
        Self {
            client,
            prefix: format!("{prefix}:idempotency:{ns}:").into(),
        }
    }

    fn key(&self, scope: &str, id: &str) -> String {
        format!("{}{scope}\u{0}{id}", self.prefix)
    }

    async fn command(
        &self,
        name: &'static str,
        args: Vec<&str>,
    ) -> Result<fred::types::Value, String> {
        use fred::prelude::ClientLike;
        use fred::types::{ClusterHash, CustomCommand};
        let cmd = CustomCommand::new_static(name, ClusterHash::FirstKey, false);
        let args: Vec<fred::types::Value> = args.into_iter().map(Into::into).collect();
        self.client
            .custom::<fred::types::Value, _>(cmd, args)
            .await
            .map_err(|e| e.to_string())
    }

    async fn claim(&self, scope: &str, id: &str, window: Duration) -> Claim {
        let key = self.key(scope, id);
        let ms = window.as_millis().to_string();
        let set = self.command("SET", vec![&key, "", "NX", "PX", &ms]).await;
        match set {
            Err(err) => {
                tracing::warn!(error = %err, "cannot reach Redis for an idempotency key");
                return Claim::Busy(
                    "the server cannot check the idempotency key now (Redis unreachable)",
                );
            }
            Ok(value) if !value.is_null() => return Claim::Run,
            Ok(_) => {}
        }
        match self.command("GET", vec![&key]).await {
            Ok(value) => match value.as_string().filter(|s| !s.is_empty()) {
                Some(text) => RawValue::from_string(text).map_or(
                    Claim::Busy("the stored answer cannot be read"),
                    Claim::Answer,
                ),
                None => Claim::Busy("the same request (same idempotency key) is still running"),
            },
            Err(_) => {
                Claim::Busy("the server cannot check the idempotency key now (Redis unreachable)")
            }
        }
    }

    async fn settle(&self, scope: &str, id: &str, answer: Option<Box<RawValue>>, window: Duration) {
        let key = self.key(scope, id);
        let done = match answer {
            Some(answer) => {
                let ms = window.as_millis().to_string();
                self.command("SET", vec![&key, answer.get(), "XX", "PX", &ms])
                    .await
            }
            None => self.command("DEL", vec![&key]).await,
        };
        if let Err(err) = done {
            // The key stays "running" until it expires: retries get
            // UNAVAILABLE meanwhile, never a second run.
            tracing::warn!(error = %err, "cannot record the answer of an idempotency key in Redis");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn a_key_runs_once_and_answers_retries_with_the_first_answer() {
        let keys = Keys::new(Duration::from_secs(60), 2);
        assert!(matches!(keys.claim("u", "send", "k1").await, Claim::Run));
        assert!(matches!(
            keys.claim("u", "send", "k1").await,
            Claim::Busy(_)
        ));
        keys.settle("u", "send", "k1", Some(raw("1"))).await;
        match keys.claim("u", "send", "k1").await {
            Claim::Answer(a) => assert_eq!(a.get(), "1"),
            _ => panic!("the first answer"),
        }
        // Another user, another event: another key.
        assert!(matches!(keys.claim("v", "send", "k1").await, Claim::Run));
        assert!(matches!(keys.claim("u", "other", "k1").await, Claim::Run));
        // A released key runs again.
        keys.settle("u", "other", "k1", None).await;
        assert!(matches!(keys.claim("u", "other", "k1").await, Claim::Run));
        // Past the per-user bound the oldest is forgotten.
        assert!(matches!(keys.claim("u", "send", "k3").await, Claim::Run));
        assert!(matches!(keys.claim("u", "send", "k1").await, Claim::Run));
    }
}
