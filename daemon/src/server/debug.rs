//! The debug listener (`--debugaddr`, `[grpc] debugAddress`, off by default): `/metrics` in
//! Prometheus' text format, `/healthz` (the process serves), `/readyz` (containerd answers
//! now and the build cache is open) and `/debug/pprof/profile` (a CPU profile, see [`super::profile`]).
//! Plain HTTP: put it on loopback or a pod-local address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::api::ApiState;
use crate::metrics::ScrapeState;

use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Binds `addr` now, so a taken port fails the start.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on debug address {addr}: {e}"),
        )
    })
}

/// Serves the debug routes until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<ApiState>) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/debug/pprof/profile", get(super::profile::profile))
        .with_state(state);
    if let Err(error) = axum::serve(listener, app).await {
        tracing::warn!("the debug listener stopped: {error}");
    }
}

async fn metrics(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    let scrape = ScrapeState {
        cache: state
            .solver
            .get()
            .and_then(|solver| solver.index.as_ref())
            .map(|index| index.store().metrics().snapshot()),
        active_sessions: state.sessions.active(),
        worker: state.worker.get().map(|worker| worker.stats()),
    };
    match state.metrics.render(scrape) {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the metrics failed\n",
        )
            .into_response(),
    }
}

async fn ready(State(state): State<Arc<ApiState>>) -> (StatusCode, String) {
    match state.solver.get() {
        Some(solver) if solver.index.is_some() => match solver.worker.check().await {
            Ok(()) => (StatusCode::OK, "ready\n".into()),
            // containerd went away after the start (a restart): builds would fail meanwhile.
            Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")),
        },
        Some(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the build cache index is not open\n".into(),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "containerd at {} has not answered yet\n",
                state.config.worker.socket.display()
            ),
        ),
    }
}
