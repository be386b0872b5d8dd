//! nodekitd's Prometheus metrics (`nodekit_` names, units in the names): builds by frontend and
//! outcome with their durations, steps, the build contexts received through file sync, and at
//! each scrape the cache's counters, the sessions and builds in flight, the worker's counters
//! (layer blobs written by compression, failed containerd calls by service) and the process's
//! memory, CPU and file descriptors. Encoded by
//! prometheus-client in Prometheus' classic text format (version 0.0.4, which every Prometheus
//! and promtool reads) for the debug listener's `/metrics`.

mod process;

use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Build durations from 10 ms to 30 min.
const BUILD_BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0, 1800.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    frontend: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FrontendLabels {
    frontend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    op: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepKindLabels {
    op: String,
}

/// How a step ended, for `nodekit_steps_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// It ran.
    Executed,
    /// Its result came from the cache (or from another build running it at the same time).
    Cached,
    Failed,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Executed => "executed",
            StepOutcome::Cached => "cached",
            StepOutcome::Failed => "failed",
        }
    }
}

/// The metrics nodekitd keeps itself; the rest is read at each scrape.
#[derive(Clone, Debug)]
pub struct Metrics {
    builds: Family<BuildLabels, Counter>,
    build_seconds: Family<FrontendLabels, Histogram>,
    active_builds: Gauge,
    steps: Family<StepLabels, Counter>,
    step_seconds: Family<StepKindLabels, Histogram>,
    context_bytes: Counter,
    context_files: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            builds: Family::default(),
            build_seconds: Family::new_with_constructor(|| {
                Histogram::new(BUILD_BUCKETS.iter().copied())
            }),
            active_builds: Gauge::default(),
            steps: Family::default(),
            step_seconds: Family::new_with_constructor(|| {
                Histogram::new(BUILD_BUCKETS.iter().copied())
            }),
            context_bytes: Counter::default(),
            context_files: Counter::default(),
        }
    }
}

/// What a scrape reads from the running daemon.
#[derive(Debug, Default)]
pub struct ScrapeState {
    pub cache: Option<cachestore::MetricsSnapshot>,
    pub active_sessions: usize,
    /// The worker's counters (None until containerd has answered).
    pub worker: Option<crate::worker::StatsSnapshot>,
}

impl Metrics {
    /// A build of `frontend` (`llb`, `gateway` or the frontend's name) has started; its outcome
    /// goes to [`BuildTimer::finish`].
    pub fn build_started(&self, frontend: &str) -> BuildTimer {
        self.active_builds.inc();
        BuildTimer {
            metrics: self.clone(),
            frontend: frontend.to_string(),
            started: Instant::now(),
            finished: false,
        }
    }

    /// A step of op kind `op` (`exec`, `file`, ...) ended; steps that ran (or failed) give
    /// their duration.
    pub fn step(&self, op: &str, outcome: StepOutcome, ran_for: Option<std::time::Duration>) {
        let labels = StepLabels {
            op: op.to_string(),
            outcome: outcome.as_str().to_string(),
        };
        self.steps.get_or_create(&labels).inc();
        if let Some(duration) = ran_for {
            let kind = StepKindLabels { op: op.to_string() };
            self.step_seconds
                .get_or_create(&kind)
                .observe(duration.as_secs_f64());
        }
    }

    /// A local source's sync received `files` files of `bytes` bytes of content from the client
    /// (files kept from the previous sync are not sent again, and not counted).
    pub fn context_received(&self, bytes: u64, files: u64) {
        self.context_bytes.inc_by(bytes);
        self.context_files.inc_by(files);
    }

    /// The exposition of every metric, with `state` read now.
    pub fn render(&self, state: ScrapeState) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::with_prefix("nodekit");
        registry.register(
            "builds",
            "Builds by frontend (llb, gateway or its name) and outcome (success, failure, cancelled)",
            self.builds.clone(),
        );
        registry.register(
            "build_duration_seconds",
            "How long builds took, by frontend",
            self.build_seconds.clone(),
        );
        registry.register(
            "active_builds",
            "Builds running now",
            self.active_builds.clone(),
        );
        registry.register(
            "steps",
            "Build steps by op kind and outcome (executed, cached, failed)",
            self.steps.clone(),
        );
        registry.register(
            "step_duration_seconds",
            "How long the steps that ran took, by op kind",
            self.step_seconds.clone(),
        );
        registry.register(
            "context_received_bytes",
            "Bytes of file content received from clients' local sources (build contexts) through the session's file sync",
            self.context_bytes.clone(),
        );
        registry.register(
            "context_received_files",
            "Files received from clients' local sources through the session's file sync (unchanged files are not sent again)",
            self.context_files.clone(),
        );
        registry.register_collector(Box::new(Scraped(state)));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

/// One build's measurement; a timer dropped unfinished (a client gone mid-build) counts as
/// cancelled.
pub struct BuildTimer {
    metrics: Metrics,
    frontend: String,
    started: Instant,
    finished: bool,
}

impl BuildTimer {
    pub fn finish(mut self, outcome: &str) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: &str) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let metrics = &self.metrics;
        metrics.active_builds.dec();
        let labels = BuildLabels {
            frontend: self.frontend.clone(),
            outcome: outcome.to_string(),
        };
        metrics.builds.get_or_create(&labels).inc();
        let frontend = FrontendLabels {
            frontend: self.frontend.clone(),
        };
        let seconds = self.started.elapsed().as_secs_f64();
        metrics
            .build_seconds
            .get_or_create(&frontend)
            .observe(seconds);
    }
}

impl Drop for BuildTimer {
    fn drop(&mut self) {
        self.record("cancelled");
    }
}

/// The values read at a scrape.
#[derive(Debug)]
struct Scraped(ScrapeState);

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(
            &mut encoder,
            "active_sessions",
            "Client sessions connected now.",
            self.0.active_sessions as i64,
        )?;
        if let Some(cache) = &self.0.cache {
            encode_cache(&mut encoder, cache)?;
        }
        if let Some(worker) = &self.0.worker {
            encode_worker(&mut encoder, worker)?;
        }
        process::encode(&mut encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
    result: String,
}

fn encode_cache(
    encoder: &mut DescriptorEncoder,
    cache: &cachestore::MetricsSnapshot,
) -> Result<(), std::fmt::Error> {
    let lookups = [("hit", &cache.hits), ("miss", &cache.misses)];
    let metric = ConstCounter::new(0u64);
    let mut family = encoder.encode_descriptor(
        "cache_lookups",
        "Build cache lookups by op kind and result (hit: the step's result was reused).",
        None,
        metric.metric_type(),
    )?;
    for (result, counts) in lookups {
        for (kind, count) in counts.iter() {
            let labels = OpLabels {
                op: kind.as_str().to_string(),
                result: result.to_string(),
            };
            ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
        }
    }
    gauge(
        encoder,
        "cache_records",
        "Records in the build cache index.",
        cache.records as i64,
    )?;
    gauge(
        encoder,
        "cache_bytes",
        "Bytes the cached results' snapshots use.",
        cache.bytes as i64,
    )?;
    counter(
        encoder,
        "cache_gc_runs",
        "Build cache garbage collections completed.",
        cache.gc_runs,
    )?;
    counter(
        encoder,
        "cache_gc_records_removed",
        "Records the build cache's garbage collection removed.",
        cache.gc_records_removed,
    )?;
    counter(
        encoder,
        "cache_gc_reclaimed_bytes",
        "Bytes the build cache's garbage collection reclaimed.",
        cache.gc_bytes_reclaimed,
    )
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CompressionLabels {
    compression: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

fn encode_worker(
    encoder: &mut DescriptorEncoder,
    worker: &crate::worker::StatsSnapshot,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(0u64);
    let mut family = encoder.encode_descriptor(
        "layers_written",
        "Layer blobs written into containerd's content store (image exports, merges), by compression.",
        None,
        metric.metric_type(),
    )?;
    for layers in &worker.layers_written {
        let labels = CompressionLabels {
            compression: layers.compression.as_str().to_string(),
        };
        ConstCounter::new(layers.blobs).encode(family.encode_family(&labels)?)?;
    }
    let mut family = encoder.encode_descriptor(
        "layer_written_bytes",
        "Bytes of the layer blobs written into containerd's content store, by compression.",
        None,
        metric.metric_type(),
    )?;
    for layers in &worker.layers_written {
        let labels = CompressionLabels {
            compression: layers.compression.as_str().to_string(),
        };
        ConstCounter::new(layers.bytes).encode(family.encode_family(&labels)?)?;
    }
    let mut family = encoder.encode_descriptor(
        "containerd_errors",
        "Failed containerd calls by gRPC service (no answer, or a status other than OK; NotFound and AlreadyExists are ordinary answers and not counted).",
        None,
        metric.metric_type(),
    )?;
    for (service, count) in &worker.containerd_errors {
        let labels = ServiceLabels {
            service: service.clone(),
        };
        ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_are_counted_by_outcome_and_an_abandoned_one_is_cancelled() {
        let metrics = Metrics::default();
        metrics.build_started("dockerfile.v0").finish("success");
        metrics.step(
            "exec",
            StepOutcome::Executed,
            Some(std::time::Duration::from_millis(30)),
        );
        metrics.step("exec", StepOutcome::Cached, None);
        drop(metrics.build_started("llb"));
        metrics.context_received(1500, 3);
        metrics.context_received(500, 1);
        let worker = crate::worker::StatsSnapshot {
            layers_written: vec![crate::worker::LayersWritten {
                compression: crate::worker::Compression::Gzip,
                blobs: 2,
                bytes: 4096,
            }],
            containerd_errors: [("tasks".to_string(), 3)].into(),
        };
        let state = ScrapeState {
            worker: Some(worker),
            ..Default::default()
        };
        let text = metrics.render(state).unwrap();
        assert!(
            text.contains("nodekit_builds_total{frontend=\"dockerfile.v0\",outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("nodekit_builds_total{frontend=\"llb\",outcome=\"cancelled\"} 1"),
            "{text}"
        );
        assert!(text.contains("nodekit_active_builds 0"), "{text}");
        for line in [
            "nodekit_steps_total{op=\"exec\",outcome=\"executed\"} 1",
            "nodekit_steps_total{op=\"exec\",outcome=\"cached\"} 1",
            "nodekit_step_duration_seconds_count{op=\"exec\"} 1",
            "nodekit_context_received_bytes_total 2000",
            "nodekit_context_received_files_total 4",
            "nodekit_layers_written_total{compression=\"gzip\"} 2",
            "nodekit_layer_written_bytes_total{compression=\"gzip\"} 4096",
            "nodekit_containerd_errors_total{service=\"tasks\"} 3",
            "# TYPE nodekit_containerd_errors_total counter",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(
            text.contains("nodekit_build_duration_seconds_bucket{frontend=\"llb\",le=\"0.01\"}"),
            "{text}"
        );
        assert!(
            text.contains("nodekit_process_resident_memory_bytes "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE nodekit_builds_total counter"),
            "{text}"
        );
    }
}
