//! Prometheus metrics of a gateway ([`ServerConfig::metrics`](super::ServerConfig::metrics)),
//! on `prometheus-client`.
//!
//! Why `prometheus-client` rather than the `metrics` facade: the registry
//! belongs to the gateway, not to a process-wide recorder, so two gateways
//! in one process (tests, a server with two listeners) never mix their
//! figures, and nothing has to be installed globally before the gateway is
//! built; it encodes the text format and needs no HTTP server of its own.
//!
//! The per-event path touches atomics only: every namespace's and event's
//! counters and histogram are created when the namespace is registered and
//! kept beside it (a `Family` lookup takes a lock), and the latency
//! histogram is our own lock-free one (`prometheus-client`'s takes a mutex
//! per observation). Only error answers look their counter up by code, off
//! the hot path.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use super::emitter::StatsInner;
use super::http::HttpCounters;

/// The label of unknown event names (the name itself is the client's, and
/// unbounded).
pub(crate) const UNKNOWN_EVENT_LABEL: &str = "(unknown)";

/// Upper bounds of the handler-latency buckets, in seconds: 50 µs to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
    10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NsLabels {
    namespace: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    namespace: &'static str,
    contract_version: String,
}

/// Distinct contract versions labelled per namespace; clients choose the
/// version string, so later ones share the label `other`.
const MAX_VERSION_LABELS: usize = 32;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    namespace: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    namespace: &'static str,
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    namespace: &'static str,
    event: &'static str,
    code: Cow<'static, str>,
}

/// A histogram updated with atomics only: one counter per bucket, a count
/// and a sum in nanoseconds.
#[derive(Clone, Debug, Default)]
pub(crate) struct LatencyHistogram(Arc<HistogramInner>);

#[derive(Debug, Default)]
struct HistogramInner {
    /// Per bucket of [`LATENCY_BUCKETS`], then one for `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    pub(crate) fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(LATENCY_BUCKETS.len());
        let inner = &self.0;
        inner.buckets[i].fetch_add(1, Ordering::Relaxed);
        inner.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let inner = &self.0;
        // Read the buckets first and derive the count from them, so that a
        // scrape during an observation stays consistent (count = Σ buckets).
        let mut buckets = [(0.0, 0u64); LATENCY_BUCKETS.len() + 1];
        for (i, slot) in buckets.iter_mut().enumerate() {
            let le = LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            *slot = (le, inner.buckets[i].load(Ordering::Relaxed));
        }
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = inner.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// The registry and the metric families of one gateway.
pub(crate) struct Metrics {
    registry: Registry,
    connected: Family<NsLabels, Gauge>,
    connects: Family<NsLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
    events: Family<EventLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    handler: Family<EventLabels, LatencyHistogram>,
    by_version: Family<VersionLabels, Gauge>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics, with the emit and HTTP counters the gateway keeps anyway
    /// read at each scrape.
    pub(crate) fn new(emits: Arc<StatsInner>, http: Arc<HttpCounters>) -> Self {
        let mut registry = Registry::with_prefix("evcontract");
        let connected = Family::<NsLabels, Gauge>::default();
        registry.register(
            "connected_sockets",
            "Sockets connected to this node, per namespace",
            connected.clone(),
        );
        let connects = Family::<NsLabels, Counter>::default();
        registry.register(
            "connects",
            "Connections accepted by a namespace",
            connects.clone(),
        );
        let refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "connects_refused",
            "Connections a namespace refused, by reason (AUTH_REQUIRED, INVALID_TOKEN)",
            refused.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events_received",
            "Client events received, per namespace and event (unknown names as `(unknown)`)",
            events.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "event_errors",
            "Client events answered with an error, by code",
            errors.clone(),
        );
        let handler = Family::<EventLabels, LatencyHistogram>::default();
        registry.register(
            "handler_duration_seconds",
            "Time in the event handler, per namespace and event",
            handler.clone(),
        );
        let by_version = Family::<VersionLabels, Gauge>::default();
        registry.register(
            "connected_sockets_by_contract_version",
            "Sockets connected to this node, per namespace and the contract version their client named (`none`: a client that named none; `other`: a version let in despite a mismatch, or past 32 distinct versions)",
            by_version.clone(),
        );
        registry.register_collector(Box::new(RuntimeCollector { emits, http }));
        Self {
            registry,
            connected,
            connects,
            refused,
            events,
            errors,
            handler,
            by_version,
        }
    }

    /// The handles of one namespace, created now so that its events never
    /// look a counter up.
    pub(crate) fn namespace(
        self: &Arc<Self>,
        namespace: &'static str,
        events: impl IntoIterator<Item = &'static str>,
    ) -> NsMetrics {
        let ns = NsLabels { namespace };
        let event = |event: &'static str| {
            let labels = EventLabels { namespace, event };
            EventMetrics {
                received: self.events.get_or_create(&labels).clone(),
                handler: self.handler.get_or_create(&labels).clone(),
            }
        };
        NsMetrics {
            shared: self.clone(),
            versions: std::sync::Mutex::default(),
            namespace,
            connected: self.connected.get_or_create(&ns).clone(),
            connects: self.connects.get_or_create(&ns).clone(),
            unknown: event(UNKNOWN_EVENT_LABEL),
            events: events.into_iter().map(|e| (e, event(e))).collect(),
        }
    }

    /// The OpenMetrics text of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; an encoder error would be ours.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%err, "encoding the metrics failed");
        }
        text
    }
}

/// One namespace's metric handles.
#[derive(Debug)]
pub(crate) struct NsMetrics {
    shared: Arc<Metrics>,
    /// The version labels given out so far (at most [`MAX_VERSION_LABELS`]).
    versions: std::sync::Mutex<std::collections::HashSet<String>>,
    namespace: &'static str,
    pub(crate) connected: Gauge,
    pub(crate) connects: Counter,
    pub(crate) unknown: EventMetrics,
    events: Vec<(&'static str, EventMetrics)>,
}

impl NsMetrics {
    /// The handles of `event` (taken once, when the namespace is mounted).
    pub(crate) fn event(&self, event: &str) -> EventMetrics {
        self.events
            .iter()
            .find(|(name, _)| *name == event)
            .map_or_else(|| self.unknown.clone(), |(_, m)| m.clone())
    }

    /// The gauge of connected sockets whose client named contract
    /// `version` (taken at connect and disconnect, never per event).
    pub(crate) fn by_version(&self, version: Option<&str>) -> Gauge {
        let label = match version {
            None => "none".to_owned(),
            Some(v) => {
                let mut seen = self
                    .versions
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if seen.contains(v)
                    || (seen.len() < MAX_VERSION_LABELS && seen.insert(v.to_owned()))
                {
                    v.to_owned()
                } else {
                    "other".to_owned()
                }
            }
        };
        self.shared
            .by_version
            .get_or_create(&VersionLabels {
                namespace: self.namespace,
                contract_version: label,
            })
            .clone()
    }

    pub(crate) fn refused(&self, reason: &'static str) {
        self.shared
            .refused
            .get_or_create(&RefusedLabels {
                namespace: self.namespace,
                reason,
            })
            .inc();
    }

    pub(crate) fn error(&self, event: &'static str, code: Cow<'static, str>) {
        self.shared
            .errors
            .get_or_create(&ErrorLabels {
                namespace: self.namespace,
                event,
                code,
            })
            .inc();
    }
}

/// One event's metric handles.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventMetrics {
    pub(crate) received: Counter,
    pub(crate) handler: LatencyHistogram,
}

/// The counters the gateway keeps whether or not metrics are on (emits,
/// HTTP connections), read at each scrape.
#[derive(Debug)]
struct RuntimeCollector {
    emits: Arc<StatsInner>,
    http: Arc<HttpCounters>,
}

impl prometheus_client::collector::Collector for RuntimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let e = self.emits.snapshot();
        let h = self.http.snapshot();
        let counters: [(&str, &str, u64); 13] = [
            (
                "emits",
                "Emits attempted (broadcasts count once), the runtime's acks and error events included",
                e.emits,
            ),
            (
                "emit_failures",
                "Emits that returned an error",
                e.failed_emits,
            ),
            (
                "failed_deliveries",
                "Recipients that missed a packet",
                e.failed_deliveries,
            ),
            (
                "node_only_emits",
                "Broadcasts that reached this node only because the cluster adapter was unreachable",
                e.node_only_emits,
            ),
            (
                "acks_retried",
                "Acks retried because the socket's buffer was full",
                e.acks_retried,
            ),
            (
                "deferred_emits",
                "Broadcasts queued because Redis did not take their publish in time (delivered late, in order)",
                e.deferred_emits,
            ),
            ("http_accepted", "TCP connections accepted", h.accepted),
            (
                "http_refused_node_limit",
                "Connections refused over max_connections (503)",
                h.refused_node_limit,
            ),
            (
                "http_refused_ip_limit",
                "Connections refused over max_connections_per_ip (429)",
                h.refused_ip_limit,
            ),
            (
                "http_header_timeouts",
                "Connections closed for no complete request head in time",
                h.header_timeouts,
            ),
            (
                "http_body_timeouts",
                "Connections closed for a request body not complete in time",
                h.body_timeouts,
            ),
            (
                "http_slow_consumers",
                "Connections closed because a write stayed blocked",
                h.slow_consumers,
            ),
            ("http_tls_failures", "Failed TLS handshakes", h.tls_failures),
        ];
        for (name, help, value) in counters {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        let open = ConstGauge::new(i64::try_from(h.open_connections).unwrap_or(i64::MAX));
        open.encode(encoder.encode_descriptor(
            "http_open_connections",
            "TCP connections open now",
            None,
            open.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_count_and_sum() {
        let family = Family::<EventLabels, LatencyHistogram>::default();
        let h = family
            .get_or_create(&EventLabels {
                namespace: "/n",
                event: "e",
            })
            .clone();
        h.observe(Duration::from_micros(30)); // first bucket
        h.observe(Duration::from_millis(3)); // le 0.005
        h.observe(Duration::from_secs(20)); // +Inf
        let mut registry = Registry::default();
        registry.register("h_seconds", "test", family);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"h_seconds_count{namespace="/n",event="e"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"h_seconds_bucket{le="0.00005",namespace="/n",event="e"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"h_seconds_bucket{le="0.005",namespace="/n",event="e"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"h_seconds_bucket{le="+Inf",namespace="/n",event="e"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"h_seconds_sum{namespace="/n",event="e"} 20.00303"#),
            "{text}"
        );
    }
}
