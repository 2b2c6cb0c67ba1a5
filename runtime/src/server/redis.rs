//! The Redis adapter: configuration, connection, and the state of the
//! link to Redis (what an outage does, logged once per outage).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use fred::interfaces::PubsubInterface;
use fred::prelude::{ClientLike, EventInterface, ReconnectPolicy};
use fred::types::RespVersion;
use fred::types::config::Config as FredConfig;
use socketioxide_redis::drivers::fred::FredDriver;
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};

use super::adapter::DeferredEmit;
use crate::server::ServerError;

/// Default prefix of the adapter's Redis channels.
pub const DEFAULT_REDIS_PREFIX: &str = "evcontract";

/// Default time a cluster-wide request (room listings, fetched sockets,
/// cluster counts) waits for the other nodes' answers: 5 s.
pub const DEFAULT_REDIS_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Default delay between two attempts to reach Redis again after the
/// connection was lost: 500 ms.
const DEFAULT_RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// Default number of messages from other nodes buffered before the
/// oldest is dropped: 16,384.
pub const DEFAULT_REDIS_BUFFER: usize = 16_384;

/// Default longest wait of an emit for Redis to take its publish before
/// it is queued instead: 50 ms.
pub const DEFAULT_REDIS_STALL_TIMEOUT: Duration = Duration::from_millis(50);

/// Default most emits queued while Redis does not answer: 10,000.
pub const DEFAULT_REDIS_STALL_QUEUE: usize = 10_000;

/// Several gateway nodes sharing rooms and broadcasts through Redis (or
/// Valkey) 7 or newer, with socketioxide's Redis adapter.
///
/// ```
/// # use std::time::Duration;
/// # use evcontract_runtime::server::{RedisConfig, ServerConfig};
/// let config = ServerConfig::new().redis(
///     RedisConfig::new("redis://10.0.0.5:6379")
///         .prefix("chat-prod")
///         .request_timeout(Duration::from_secs(2)),
/// );
/// ```
///
/// The URL is written as operators write it (`redis://host:port`,
/// optionally `redis://:password@host:port/db`); the runtime speaks
/// RESP3 itself, which the adapter needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) request_timeout: Duration,
    pub(crate) reconnect_delay: Duration,
    pub(crate) buffer: usize,
    pub(crate) stall_timeout: Duration,
    pub(crate) stall_queue: usize,
}

impl RedisConfig {
    /// Redis at `url`, with the defaults: prefix [`DEFAULT_REDIS_PREFIX`],
    /// request timeout [`DEFAULT_REDIS_REQUEST_TIMEOUT`], a new attempt to
    /// reach a lost Redis every 500 ms.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            request_timeout: DEFAULT_REDIS_REQUEST_TIMEOUT,
            reconnect_delay: DEFAULT_RECONNECT_DELAY,
            buffer: DEFAULT_REDIS_BUFFER,
            stall_timeout: DEFAULT_REDIS_STALL_TIMEOUT,
            stall_queue: DEFAULT_REDIS_STALL_QUEUE,
        }
    }

    /// The longest a handler's emit waits for Redis to take its publish
    /// (default [`DEFAULT_REDIS_STALL_TIMEOUT`], 50 ms). Past it the emit
    /// returns and is queued: the queue runs in order, one publish at a
    /// time, and each emit is delivered to every node's sockets (this
    /// one's included) once Redis takes it, late but in order; while the
    /// queue is not empty, new emits join it at once, so a stalled Redis
    /// (a full disk, a paused process, a partition) never holds a
    /// handler longer than this. A queued emit whose publish then fails
    /// (after [`request_timeout`](Self::request_timeout)) is delivered
    /// on this node only and counted as node-only. Cluster-wide queries
    /// fail at once while the queue runs.
    #[must_use]
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Most emits queued while Redis does not answer (default
    /// [`DEFAULT_REDIS_STALL_QUEUE`]); past it an emit is delivered on
    /// this node at once, the other nodes miss it, and it is counted
    /// as node-only (and logged, aggregated).
    #[must_use]
    pub fn stall_queue(mut self, emits: usize) -> Self {
        self.stall_queue = emits.max(1);
        self
    }

    /// How many messages from the other nodes (broadcasts, requests)
    /// wait to be handled before the oldest are dropped (default
    /// [`DEFAULT_REDIS_BUFFER`]); a burst larger than this is lost for
    /// this node's sockets, with a warning from the adapter. fred's
    /// own default (32) loses messages under ordinary fan-out load.
    #[must_use]
    pub fn buffer(mut self, messages: usize) -> Self {
        self.buffer = messages.max(1);
        self
    }

    /// Prefix of every Redis channel the adapter uses (default
    /// [`DEFAULT_REDIS_PREFIX`]). Give each application sharing one Redis
    /// its own prefix; nodes of one application must use the same one.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a cluster-wide request waits for the other nodes (default
    /// 5 s). A node that does not answer in time is left out of the
    /// answer; also the longest a publish to Redis may take.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Delay between two attempts to reach Redis again after the
    /// connection was lost (default 500 ms).
    #[must_use]
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.reconnect_delay = delay;
        self
    }

    /// The URL without its password, for messages.
    pub(crate) fn redacted_url(&self) -> String {
        match url_password_span(&self.url) {
            Some((start, end)) => format!("{}***{}", &self.url[..start], &self.url[end..]),
            None => self.url.clone(),
        }
    }
}

/// Byte range of the password in `scheme://user:password@host…`.
fn url_password_span(url: &str) -> Option<(usize, usize)> {
    let after_scheme = url.find("://")? + 3;
    let authority_end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    let at = url[after_scheme..authority_end].rfind('@')? + after_scheme;
    let colon = url[after_scheme..at].find(':')? + after_scheme;
    Some((colon + 1, at))
}

/// The connection to Redis shared by every namespace of a gateway, and
/// what the emitters need to know of it.
#[derive(Debug)]
pub(crate) struct ClusterLink {
    pub(super) client: fred::clients::SubscriberClient,
    url: String,
    /// `RedisConfig::prefix`: also the prefix of the history's keys.
    pub(super) prefix: String,
    /// Set while Redis is unreachable (from the first error to the next
    /// reconnection).
    down: AtomicBool,
    /// Broadcasts delivered to this node's sockets only because Redis was
    /// unreachable.
    node_only: AtomicU64,
    /// Cluster-wide requests refused because Redis was unreachable.
    refused_requests: AtomicU64,
    /// `RedisConfig::stall_timeout` and `stall_queue`.
    stall_timeout: Duration,
    stall_queue: usize,
    /// The queue of emits waiting for Redis: `Some` while its task runs.
    deferred: Mutex<Option<mpsc::UnboundedSender<DeferredEmit>>>,
    /// Emits in that queue.
    queued: AtomicUsize,
    /// Emits queued since start.
    deferred_total: AtomicU64,
    /// `true` from a lost connection to the next reconnection: a queued
    /// emit stops waiting for its publish then.
    went_down: tokio::sync::watch::Sender<bool>,
}

impl ClusterLink {
    /// Connects to Redis and builds the adapter's state. Fails with the
    /// URL and the reason when Redis cannot be reached now.
    pub(crate) async fn connect(
        config: &RedisConfig,
    ) -> Result<(Arc<Self>, RedisAdapterCtr<FredDriver>), ServerError> {
        let url = config.redacted_url();
        let fail = |what: &str, err: &dyn std::fmt::Display| {
            ServerError::Cluster(format!("{what} Redis at {url}: {err}"))
        };
        let mut fred_config = FredConfig::from_url(&without_query(&config.url))
            .map_err(|e| fail("bad URL for", &e))?;
        // socketioxide-redis's drivers need RESP3; fred does not read a
        // `protocol` query parameter, so it is set here and operators
        // can write the plain URL.
        fred_config.version = RespVersion::RESP3;
        // An unreachable Redis at start is an error, not a silent retry
        // loop.
        fred_config.fail_fast = true;
        let delay_ms = u32::try_from(config.reconnect_delay.as_millis()).unwrap_or(u32::MAX);
        let client = fred::types::Builder::from_config(fred_config)
            .with_performance_config(|perf| {
                // A publish never waits longer than a request may: a
                // broadcast stuck on a half-open connection falls back
                // to this node's sockets after that.
                perf.default_command_timeout = config.request_timeout;
                // Every message from Redis goes through this channel
                // to the adapter's dispatcher; a lagging receiver loses
                // what overflowed.
                perf.broadcast_channel_capacity = config.buffer;
            })
            .with_connection_config(|conn| {
                conn.connection_timeout = config.request_timeout;
                conn.internal_command_timeout = config.request_timeout;
            })
            .set_policy(ReconnectPolicy::new_constant(0, delay_ms.max(1)))
            .build_subscriber_client()
            .map_err(|e| fail("cannot configure", &e))?;
        let adapter_config = RedisAdapterConfig::new()
            .with_prefix(config.prefix.clone())
            .with_request_timeout(config.request_timeout)
            .with_stream_buffer(config.buffer);
        let ctr = RedisAdapterCtr::new_with_fred_config(client.clone(), adapter_config)
            .await
            .map_err(|e| fail("cannot reach", &e))?;
        let link = Arc::new(Self {
            client,
            url,
            prefix: config.prefix.clone(),
            down: AtomicBool::new(false),
            node_only: AtomicU64::new(0),
            refused_requests: AtomicU64::new(0),
            stall_timeout: config.stall_timeout,
            stall_queue: config.stall_queue,
            deferred: Mutex::new(None),
            queued: AtomicUsize::new(0),
            deferred_total: AtomicU64::new(0),
            went_down: tokio::sync::watch::Sender::new(false),
        });
        link.clone().watch();
        Ok((link, ctr))
    }

    /// Logs the outage once when the connection is lost and once when it
    /// is back (with what was not shared meanwhile), never per message.
    fn watch(self: Arc<Self>) {
        let mut errors = self.client.error_rx();
        let mut reconnects = self.client.reconnect_rx();
        tokio::spawn(async move {
            let mut since: Option<Instant> = None;
            loop {
                tokio::select! {
                    err = errors.recv() => match err {
                        Ok((err, _)) => {
                            if since.is_none() {
                                since = Some(Instant::now());
                                self.down.store(true, Ordering::SeqCst);
                                self.went_down.send_replace(true);
                                tracing::warn!(
                                    redis = %self.url,
                                    error = %err,
                                    "Redis unreachable: broadcasts reach this node's sockets only \
                                     and cluster-wide queries fail until it is back; what other \
                                     nodes publish meanwhile is lost"
                                );
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    ok = reconnects.recv() => match ok {
                        Ok(_) => {
                            self.resubscribe().await;
                            self.down.store(false, Ordering::SeqCst);
                            self.went_down.send_replace(false);
                            if let Some(start) = since.take() {
                                tracing::warn!(
                                    redis = %self.url,
                                    outage_ms = start.elapsed().as_millis() as u64,
                                    node_only_broadcasts = self.node_only.load(Ordering::Relaxed),
                                    refused_requests = self.refused_requests.load(Ordering::Relaxed),
                                    "Redis reachable again: cross-node delivery resumes"
                                );
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        });
    }

    /// Subscribes again to every channel the adapter subscribed to: a
    /// new connection to Redis starts with none, and cross-node delivery
    /// only resumes once they are back.
    ///
    /// fred's own `SubscriberClient::manage_subscriptions` cannot be
    /// used: its `resubscribe_all` sends `SUBSCRIBE` with no channel
    /// first (the adapter only uses sharded channels), Redis answers
    /// with an error, and it returns before restoring the sharded ones.
    /// The `redis` crate's driver is worse off: its one multiplexed
    /// connection is never re-established.
    async fn resubscribe(&self) {
        for channel in self.client.tracked_shard_channels() {
            if let Err(err) = self.client.ssubscribe(channel.to_string()).await {
                tracing::warn!(
                    redis = %self.url,
                    channel = %channel,
                    error = %err,
                    "cannot subscribe again after reconnecting to Redis"
                );
            }
        }
    }

    /// Whether cluster traffic can go through Redis now. While it cannot,
    /// broadcasts go to this node's sockets directly instead of waiting
    /// for a publish that cannot succeed.
    pub(crate) fn available(&self) -> bool {
        !self.down.load(Ordering::SeqCst) && self.client.is_connected()
    }

    /// Counts a broadcast that reached this node's sockets only.
    pub(crate) fn record_node_only(&self) {
        self.node_only.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a cluster-wide request that could not be made.
    pub(crate) fn record_refused_request(&self) {
        self.refused_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The room history of namespace `ns`, in this Redis.
    pub(crate) fn shared_history(&self, ns: &str) -> crate::server::history::SharedHistory {
        crate::server::history::SharedHistory::new(self.client.clone(), &self.prefix, ns)
    }

    /// The URL, without its password.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    /// Resolves once the connection to Redis is known lost.
    pub(crate) fn down_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut down = self.went_down.subscribe();
        async move {
            // An error means the link is gone: stop waiting too.
            let _ = down.wait_for(|down| *down).await;
        }
    }

    pub(crate) fn stalled(&self) -> bool {
        self.deferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Queues `job`; starts the queue's task when it is not running.
    pub(crate) fn defer(self: &Arc<Self>, job: DeferredEmit) -> Result<(), DeferredEmit> {
        let mut deferred = self.deferred.lock().unwrap_or_else(PoisonError::into_inner);
        if self.queued.load(Ordering::SeqCst) >= self.stall_queue {
            return Err(job);
        }
        let sender = match &*deferred {
            Some(sender) => sender.clone(),
            None => {
                let (sender, receiver) = mpsc::unbounded_channel();
                *deferred = Some(sender.clone());
                tracing::warn!(
                    redis = %self.url,
                    stall_ms = self.stall_timeout.as_millis() as u64,
                    "Redis did not take a publish in time: emits are queued and delivered \
                     in order once it answers; handlers do not wait"
                );
                tokio::spawn(self.clone().drain(receiver));
                sender
            }
        };
        self.queued.fetch_add(1, Ordering::SeqCst);
        self.deferred_total.fetch_add(1, Ordering::Relaxed);
        // The receiver lives until the queue is closed under this lock.
        let _ = sender.send(job);
        Ok(())
    }

    /// Runs the queued emits one at a time, in order, and closes the
    /// queue when it is empty (checked under the lock that `defer`
    /// takes, so no emit is left behind).
    async fn drain(self: Arc<Self>, mut receiver: mpsc::UnboundedReceiver<DeferredEmit>) {
        let started = Instant::now();
        let mut ran = 0u64;
        loop {
            if let Some(job) = receiver.recv().await {
                job.await;
                ran += 1;
                self.queued.fetch_sub(1, Ordering::SeqCst);
            }
            let mut deferred = self.deferred.lock().unwrap_or_else(PoisonError::into_inner);
            if receiver.is_empty() {
                *deferred = None;
                break;
            }
        }
        tracing::warn!(
            redis = %self.url,
            queued_ms = started.elapsed().as_millis() as u64,
            emits = ran,
            "Redis answers again: the queued emits are delivered, handlers' emits go straight through"
        );
    }
}

/// `url` without its query string: fred refuses parameters it does not
/// know (such as the `protocol=resp3` other Redis clients take).
fn without_query(url: &str) -> String {
    url.split_once('?').map_or(url, |(base, _)| base).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        let c = |u: &str| RedisConfig::new(u).redacted_url();
        assert_eq!(c("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            c("redis://:hunter2@redis.internal:6379/0"),
            "redis://:***@redis.internal:6379/0"
        );
        assert_eq!(
            c("redis://app:s3cr@t@host:1?protocol=resp3"),
            "redis://app:***@host:1?protocol=resp3"
        );
        assert_eq!(c("redis://user@host"), "redis://user@host");
    }

    #[test]
    fn query_is_dropped_for_fred() {
        assert_eq!(
            without_query("redis://h:1?protocol=resp3"),
            "redis://h:1".to_owned()
        );
        assert_eq!(without_query("redis://h:1"), "redis://h:1".to_owned());
    }
}
