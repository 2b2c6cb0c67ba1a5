//! The gateway's link to the other nodes, as the rest of the runtime sees
//! it: whether there are others, whether Redis answers now, the queue of
//! emits waiting for it, and the state every node shares (room history,
//! idempotency keys). On one node it is empty and answers accordingly.

use super::adapter::DeferredEmit;
#[cfg(feature = "redis")]
use super::redis::ClusterLink;

/// The gateway's link to the other nodes: none on the local adapter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cluster {
    #[cfg(feature = "redis")]
    link: Option<std::sync::Arc<ClusterLink>>,
}

impl Cluster {
    /// The link of a gateway on the Redis adapter.
    #[cfg(feature = "redis")]
    pub(crate) fn redis(link: std::sync::Arc<ClusterLink>) -> Self {
        Self { link: Some(link) }
    }

    /// Whether other nodes may exist (a remote adapter is in use).
    pub(crate) fn is_remote(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.link.is_some();
        #[cfg(not(feature = "redis"))]
        false
    }

    /// Whether the other nodes can be reached now (always, on one node).
    pub(crate) fn available(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.link.as_ref().is_none_or(|link| link.available());
        #[cfg(not(feature = "redis"))]
        true
    }

    /// Counts a broadcast that reached this node's sockets only.
    pub(crate) fn record_node_only(&self) {
        #[cfg(feature = "redis")]
        if let Some(link) = &self.link {
            link.record_node_only();
        }
    }

    /// Counts a cluster-wide request that could not be made.
    pub(crate) fn record_refused_request(&self) {
        #[cfg(feature = "redis")]
        if let Some(link) = &self.link {
            link.record_refused_request();
        }
    }

    /// How long an emit waits for Redis to take its publish before it is
    /// queued instead (`None` on one node).
    pub(crate) fn stall_timeout(&self) -> Option<std::time::Duration> {
        #[cfg(feature = "redis")]
        return self.link.as_ref().map(|link| link.stall_timeout());
        #[cfg(not(feature = "redis"))]
        None
    }

    /// Whether emits are being queued behind a publish Redis has not taken
    /// yet: a new emit then joins the queue at once, keeping the order.
    pub(crate) fn stalled(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.link.as_ref().is_some_and(|link| link.stalled());
        #[cfg(not(feature = "redis"))]
        false
    }

    /// Resolves once the connection to Redis is known lost (never on one
    /// node).
    pub(crate) fn down_signal(&self) -> DeferredEmit {
        #[cfg(feature = "redis")]
        if let Some(link) = &self.link {
            return Box::pin(link.down_signal());
        }
        Box::pin(std::future::pending())
    }

    /// Queues `job` (an emit: its publish, then its delivery on this node)
    /// behind the others, run one at a time in order once Redis answers;
    /// gives it back when the queue is full (or there is no cluster).
    pub(crate) fn defer(&self, job: DeferredEmit) -> Result<(), DeferredEmit> {
        #[cfg(feature = "redis")]
        if let Some(link) = &self.link {
            return link.defer(job);
        }
        Err(job)
    }

    /// The room history every node shares, for namespace `ns` (`None` on
    /// one node).
    #[cfg(feature = "redis")]
    pub(crate) fn shared_history(&self, ns: &str) -> Option<crate::server::history::SharedHistory> {
        self.link.as_ref().map(|link| link.shared_history(ns))
    }

    /// The idempotency keys every node shares, for namespace `ns` (`None`
    /// on one node).
    #[cfg(feature = "redis")]
    pub(crate) fn shared_keys(&self, ns: &str) -> Option<crate::server::idempotency::SharedKeys> {
        self.link.as_ref().map(|link| {
            crate::server::idempotency::SharedKeys::new(link.client.clone(), &link.prefix, ns)
        })
    }

    /// Where the other nodes are reached, for messages.
    pub(crate) fn describe(&self) -> String {
        #[cfg(feature = "redis")]
        if let Some(link) = &self.link {
            return format!("Redis at {}", link.url());
        }
        "no cluster adapter".to_owned()
    }
}
