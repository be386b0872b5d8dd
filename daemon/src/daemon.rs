//! The daemon's lifecycle: listen, reach containerd (retrying with backoff), serve, stop on
//! SIGINT or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use tonic::service::Routes;
use tonic_health::ServingStatus;

use crate::api::{self, load_or_create_worker_id, ApiState};
use crate::config::{Config, LogFormat};
use crate::history::BuildHistory;
use crate::server;
use crate::session::SessionManager;
use crate::solver::cache::index::CacheIndex;
use crate::solver::Solver;
use crate::worker::{connect_with_backoff, leases, Worker};
use cachestore::Store;

/// Logs on stderr: plain text, or one JSON object per line for a node's log pipeline, with the
/// spans the line was logged in: `span` the innermost, `spans` all of them from the outermost
/// (the build's reference, `build_ref`, and while a step runs its vertex digest and op kind).
pub fn init_logging(debug: bool, format: LogFormat) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
            builder.with_target(false).with_ansi(terminal).init();
        }
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    run_until(config, shutdown_signal()).await
}

/// Serves until `shutdown` completes, then lets go of what the solver keeps (its leases).
pub async fn run_until(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.root)
        .with_context(|| format!("creating root directory {}", config.root.display()))?;
    let store = open_cache_store(&config.root)?;
    let listeners = server::bind_all(&config.addrs, &config.security).await?;
    for addr in &config.addrs {
        tracing::info!(%addr, "listening");
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let worker_id = load_or_create_worker_id(&config.root)
        .with_context(|| format!("keeping the worker ID under {}", config.root.display()))?;
    let state = Arc::new(ApiState {
        worker_id,
        config: config.clone(),
        worker: Default::default(),
        solver: Default::default(),
        history: Default::default(),
        sessions: Arc::new(SessionManager::default()),
        jobs: Default::default(),
        gateways: Default::default(),
        metrics: Default::default(),
        draining: Default::default(),
    });
    let debug = match config.debug_addr {
        Some(addr) => {
            let listener = server::debug::bind(addr).await?;
            tracing::info!(%addr, "debug listener: /metrics, /healthz, /readyz, /debug/pprof/profile");
            Some(tokio::spawn(server::debug::serve(listener, state.clone())))
        }
        None => None,
    };
    let routes = api::routes(state.clone(), Routes::new(health_service));
    let api_state = state.clone();

    // A worker that cannot start (a damaged cache index found by the start's scan) stops the
    // daemon with its error rather than leaving it listening and never ready.
    let (failed, worker_failure) = tokio::sync::oneshot::channel::<anyhow::Error>();
    let worker_task = tokio::spawn(async move {
        if let Err(error) = start_worker(state, store, health).await {
            let _ = failed.send(error);
        }
    });
    let fatal = Arc::new(std::sync::OnceLock::new());
    let stop = {
        let fatal = fatal.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                Ok(error) = worker_failure => {
                    let _ = fatal.set(error);
                }
            }
        }
    };
    let drained = drain_after(stop, api_state.clone());
    server::serve(listeners, routes, drained).await?;
    worker_task.abort();
    if let Some(debug) = debug {
        debug.abort();
    }
    if let Some(solver) = api_state.solver.get() {
        solver.shutdown().await;
    }
    if let Some(error) = Arc::into_inner(fatal).and_then(std::sync::OnceLock::into_inner) {
        return Err(error);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Reaches containerd (retrying), releases what an earlier run left, opens the build cache on
/// `store` and makes the daemon ready for builds.
async fn start_worker(
    state: Arc<ApiState>,
    store: Store,
    health: tonic_health::server::HealthReporter,
) -> anyhow::Result<()> {
    let mut worker_config = state.config.worker.clone();
    worker_config.owner = format!("nodekitd-{}", state.worker_id);
    let (channel, containerd) = connect_with_backoff(worker_config.socket.clone()).await;
    let worker = Worker::with_channel(worker_config, channel, containerd)?;
    release_leftovers(&worker).await;
    let mut solver = Solver::new(worker.clone(), state.sessions.clone(), &state.config.root);
    solver.metrics = state.metrics.clone();
    solver.limits = state.config.limits;
    let index = open_cache(store, &worker).await?;
    if state.config.cache.gc {
        let (index, cache) = (index.clone(), state.config.cache.clone());
        let root = state.config.root.clone();
        tokio::spawn(async move { index.gc_loop(cache.policies, &root, GC_INTERVAL).await });
    }
    let history = BuildHistory::new(index.store().clone(), state.config.cache.history);
    let history = Arc::new(history);
    history.expire().await;
    let _ = state.history.set(history);
    solver.use_index(index);
    let _ = state.worker.set(worker.clone());
    let _ = state.solver.set(solver);
    health.set_service_status("", ServingStatus::Serving).await;
    tokio::spawn(follow_containerd(worker.clone(), health));
    let jobs = state.jobs.clone();
    tokio::spawn(crate::memory::trim_when_idle(move || jobs.running() > 0));
    tracing::info!(
        containerd = %worker.config().socket.display(),
        version = %worker.containerd().version,
        namespace = %worker.ctx().namespace(),
        snapshotter = worker.snapshotter(),
        worker_id = %state.worker_id,
        "containerd worker ready"
    );
    if let Some(proxy) = &worker.config().proxy {
        let proxy = crate::config::proxy::masked(proxy);
        tracing::info!(%proxy, "RUN steps get the daemon's proxy settings");
    }
    Ok(())
}

/// Once `shutdown` fires: refuse new builds, and give running ones up to the configured grace
/// period to finish before the listeners close. Those still running then are cancelled (their
/// clients get Cancelled, their steps are killed, their records kept) and waited for a while:
/// the listeners' closing does not end a request whose client keeps its connection open.
async fn drain_after(shutdown: impl std::future::Future<Output = ()>, state: Arc<ApiState>) {
    shutdown.await;
    state
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let grace = state.config.shutdown_grace;
    let running = state.jobs.running();
    if running == 0 {
        return;
    }
    tracing::info!(
        running,
        ?grace,
        "shutting down: letting running builds finish"
    );
    if builds_end_within(&state, grace).await {
        return;
    }
    let left = state.jobs.cancel_all();
    tracing::warn!(
        left,
        ?grace,
        "grace period over: cancelling the builds still running"
    );
    if !builds_end_within(&state, CANCEL_WAIT).await {
        tracing::warn!(
            left = state.jobs.running(),
            "some cancelled builds did not end in time"
        );
    }
}

/// How long builds cancelled at shutdown get to tear their steps down and answer.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits up to `limit` for no build to be running; returns whether none is.
async fn builds_end_within(state: &ApiState, limit: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while state.jobs.running() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    state.jobs.running() == 0
}

/// How often the build cache is garbage-collected when nothing else triggers it.
const GC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// How often the gRPC health status asks containerd whether it answers.
const HEALTH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Keeps the gRPC health status in step with containerd, as `/readyz` is: a probe of the
/// standard health service (Kubernetes' grpc probe, a load balancer) sees NOT_SERVING while
/// containerd does not answer, and SERVING again once it does.
async fn follow_containerd(worker: Worker, health: tonic_health::server::HealthReporter) {
    let mut serving = true;
    let mut ticks = tokio::time::interval(HEALTH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let answered = worker.check().await;
        if answered.is_ok() == serving {
            continue;
        }
        serving = answered.is_ok();
        match answered {
            Ok(()) => {
                tracing::info!("containerd answers again: gRPC health SERVING");
                health.set_service_status("", ServingStatus::Serving).await;
            }
            Err(error) => {
                tracing::warn!(%error, "containerd does not answer: gRPC health NOT_SERVING");
                health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
            }
        }
    }
}

/// The cache index's file under `root`, opened before anything is served: a file that cannot
/// be (damaged header, from a newer nodekit, held by another daemon) stops the daemon with an
/// error naming it and what to do, rather than a silent new index (the records cannot be
/// rebuilt from containerd: their keys are hashes of build steps that only the index keeps).
/// Opening reads no record: the records are read once, by the reconciliation with containerd.
fn open_cache_store(root: &std::path::Path) -> anyhow::Result<Store> {
    let dir = root.join("cache");
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the cache directory {}", dir.display()))?;
    let path = dir.join("index.redb");
    Store::open(&path).map_err(|error| with_the_way_out(&error, &path))
}

/// `error` of the index at `path`, with what to do if the file is damaged.
fn with_the_way_out(error: &cachestore::Error, path: &std::path::Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{error}\n  if the file is damaged, move it aside and start nodekitd again \
         (mv {path} {path}.damaged): it starts an empty cache index and releases the cache \
         snapshots the old one held (see \"Recovering a damaged cache index\" in the README)",
        path = path.display()
    )
}

/// The build cache of `store`, reconciled with containerd. Reconciling reads every record: one
/// that cannot be read stops the daemon, before it serves a build, as a damaged file does at
/// open; containerd's failing to answer only leaves the reconciliation for later.
async fn open_cache(store: Store, worker: &Worker) -> anyhow::Result<Arc<CacheIndex>> {
    let started = std::time::Instant::now();
    let path = store.path().to_path_buf();
    let index = CacheIndex::with_store(store, worker.clone());
    match index.reconcile().await {
        Ok(found) => {
            tracing::info!(records = found.records, dropped = found.dropped, leases_released = found.leases_released, took = ?started.elapsed(), "build cache ready")
        }
        Err(error) => {
            if let Some(damaged @ cachestore::Error::CorruptFile { .. }) = error.downcast_ref() {
                return Err(with_the_way_out(damaged, &path));
            }
            tracing::warn!(%error, "could not reconcile the build cache with containerd")
        }
    }
    Ok(Arc::new(index))
}

/// Removes the containers and releases the leases an earlier run of this daemon left behind
/// (it was killed mid-build).
async fn release_leftovers(worker: &Worker) {
    match crate::worker::exec::remove_leftover_containers(worker).await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "removed step containers left by an earlier run"),
        Err(error) => {
            tracing::warn!(%error, "could not look for containers left by an earlier run")
        }
    }
    let owner = &worker.config().owner;
    match leases::release_leftovers(worker.channel().clone(), worker.ctx(), owner).await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "released leases left by an earlier run"),
        Err(error) => tracing::warn!(%error, "could not look for leases left by an earlier run"),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
