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
//!
//! In Redis a running key is a lease (`idempotency_lease`, renewed while
//! the handler runs), not a record for the whole window: a node that dies
//! mid-handler, or a claim that Redis carried out after the node had given
//! up on it (a timeout while Redis was stalled), would otherwise leave the
//! key "running" for the window, and every retry would be refused. Events
//! that the handler keeps in a room's shared history are numbered once per
//! key too (`KeyedRun::push_token`), so a handler that runs again after
//! a push whose answer was lost does not keep its event twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

/// Default [`ServerConfig::idempotency_window`](super::ServerConfig::idempotency_window): 10 minutes.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(600);

/// Default [`ServerConfig::idempotency_keys_per_user`](super::ServerConfig::idempotency_keys_per_user): 1,000.
pub const DEFAULT_IDEMPOTENCY_KEYS_PER_USER: usize = 1000;

/// Default [`ServerConfig::idempotency_lease`](super::ServerConfig::idempotency_lease): 10 s.
pub const DEFAULT_IDEMPOTENCY_LEASE: Duration = Duration::from_secs(10);

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

/// How a key is stored: under its event, so that two events may use one
/// key (claims, settles and lease renewals must all name it alike).
fn key_id(event: &str, key: &str) -> String {
    format!("{event}\u{0}{key}")
}

/// The idempotency keys of one namespace.
pub(crate) struct Keys {
    window: Duration,
    lease: Duration,
    per_user: usize,
    local: Mutex<HashMap<String, UserKeys>>,
    #[cfg(feature = "redis")]
    shared: Option<SharedKeys>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("window", &self.window)
            .field("lease", &self.lease)
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
    pub(crate) fn new(window: Duration, lease: Duration, per_user: usize) -> Self {
        Self {
            window: window.max(Duration::from_millis(1)),
            lease: lease.max(Duration::from_millis(10)),
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
        let id = key_id(event, key);
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return shared.claim(scope, &id, self.lease).await;
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

    /// Runs the handler of a claimed key. With Redis the key's lease is
    /// renewed while it runs, and the events it keeps in shared room
    /// histories are numbered once per key (see `KeyedRun`).
    pub(crate) async fn run_claimed<F: std::future::Future>(
        &self,
        scope: &str,
        event: &str,
        key: &str,
        handler: F,
    ) -> F::Output {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let id = key_id(event, key);
            let run = KEYED_RUN.scope(
                KeyedRun {
                    token: format!("{scope}\u{0}{id}"),
                    window: self.window,
                    pushes: Mutex::new(HashMap::new()),
                },
                handler,
            );
            let renew = shared.keep_leased(scope, &id, self.lease);
            tokio::pin!(run, renew);
            return tokio::select! {
                out = &mut run => out,
                () = &mut renew => run.await,
            };
        }
        #[cfg(not(feature = "redis"))]
        let _ = (scope, event, key);
        handler.await
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
        let id = key_id(event, key);
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

#[cfg(feature = "redis")]
tokio::task_local! {
    /// The keyed event whose handler runs in this task.
    static KEYED_RUN: KeyedRun;
}

/// A keyed event's handler run, seen from the emits it makes.
#[cfg(feature = "redis")]
pub(crate) struct KeyedRun {
    /// Who sent it, the event and the key.
    token: String,
    /// How long the key is remembered.
    window: Duration,
    /// Per room, how many events this run kept in its history so far.
    pushes: Mutex<HashMap<String, u32>>,
}

#[cfg(feature = "redis")]
impl KeyedRun {
    /// When the current task runs a keyed event's handler: a token naming
    /// its next event kept in `room` (the same on every run of the same
    /// key, as long as the handler keeps the same events in the same
    /// order), and how long the token is worth remembering. `None` outside
    /// a keyed handler, and in tasks the handler spawned.
    pub(crate) fn push_token(room: &str) -> Option<(String, Duration)> {
        KEYED_RUN
            .try_with(|run| {
                let mut pushes = run.pushes.lock().unwrap_or_else(PoisonError::into_inner);
                let n = pushes.entry(room.to_owned()).or_insert(0);
                *n += 1;
                (format!("{}\u{0}{n}", run.token), run.window)
            })
            .ok()
    }
}

/// Renews a running key's lease while it is still running (`""`).
#[cfg(feature = "redis")]
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == '' then
  return redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 0
";

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

    /// Runs `name` on the node of the key at `args[key_at]`.
    async fn command(
        &self,
        name: &'static str,
        key_at: usize,
        args: Vec<&str>,
    ) -> Result<fred::types::Value, String> {
        use fred::prelude::ClientLike;
        use fred::types::{ClusterHash, CustomCommand};
        let cmd = CustomCommand::new_static(name, ClusterHash::Offset(key_at), false);
        let args: Vec<fred::types::Value> = args.into_iter().map(Into::into).collect();
        self.client
            .custom::<fred::types::Value, _>(cmd, args)
            .await
            .map_err(|e| e.to_string())
    }

    /// Claims a key for a lease; [`keep_leased`](Self::keep_leased)
    /// renews it while the handler runs, and [`settle`](Self::settle)
    /// keeps the answer for the window.
    async fn claim(&self, scope: &str, id: &str, lease: Duration) -> Claim {
        let key = self.key(scope, id);
        let ms = lease.as_millis().to_string();
        let set = self
            .command("SET", 0, vec![&key, "", "NX", "PX", &ms])
            .await;
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
        match self.command("GET", 0, vec![&key]).await {
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

    /// Renews the lease of a running key every third of the lease; never
    /// returns (dropped when the handler ends). A renewal that fails is
    /// logged: past the lease a retry may run the handler again, the one
    /// case where a key runs twice (Redis unreachable longer than the
    /// lease while the handler runs, then reachable for the retry).
    async fn keep_leased(&self, scope: &str, id: &str, lease: Duration) {
        let key = self.key(scope, id);
        let ms = lease.as_millis().to_string();
        loop {
            tokio::time::sleep(lease / 3).await;
            let renewed = self.command("EVAL", 2, vec![RENEW, "1", &key, &ms]).await;
            if let Err(err) = renewed {
                tracing::warn!(error = %err, "cannot renew the lease of a running idempotency key in Redis");
            }
        }
    }

    async fn settle(&self, scope: &str, id: &str, answer: Option<Box<RawValue>>, window: Duration) {
        let key = self.key(scope, id);
        let done = match answer {
            Some(answer) => {
                let ms = window.as_millis().to_string();
                self.command("SET", 0, vec![&key, answer.get(), "PX", &ms])
                    .await
            }
            None => self.command("DEL", 0, vec![&key]).await,
        };
        if let Err(err) = done {
            // The key stays "running" until its lease ends: retries get
            // UNAVAILABLE meanwhile, then run the handler again (the
            // events it keeps in shared histories are not kept twice).
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
        let keys = Keys::new(Duration::from_secs(60), DEFAULT_IDEMPOTENCY_LEASE, 2);
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
