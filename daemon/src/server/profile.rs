//! `GET /debug/pprof/profile?seconds=N` on the debug listener: a CPU profile of nodekitd, taken by
//! sampling its threads 99 times a second for N seconds (default 30, at most 300) with pprof-rs,
//! served as Go serves it: a gzipped pprof protobuf, so `go tool pprof
//! http://ADDR/debug/pprof/profile?seconds=10` and every pprof viewer read it. With
//! `format=flamegraph` the answer is an SVG flame graph instead. The sampler is process-wide:
//! one profile at a time (another request meanwhile is refused with 409), and a client that goes
//! away stops it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

const DEFAULT_SECONDS: u64 = 30;
const MAX_SECONDS: u64 = 300;
/// Samples a second: not a divisor of common timer periods, as Go's 100 Hz is not.
const FREQUENCY: i32 = 99;
/// Libraries whose frames are not unwound from a signal handler (unwinding through them is
/// unsafe there, and their time shows as the caller's).
const BLOCKLIST: [&str; 4] = ["libc", "libgcc", "pthread", "vdso"];

/// The flame graph of a profile without samples.
const IDLE_SVG: &str = "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"600\" height=\"40\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"10\" y=\"25\">No CPU samples: nodekitd was idle during the profile</text></svg>\n";

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
struct ProfileRequest {
    seconds: u64,
    format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// gzipped pprof protobuf
    Pprof,
    /// SVG flame graph
    Flamegraph,
}

/// Reads `seconds` and `format` from the query; other parameters (Go's `debug`, ...) are ignored.
fn parse(query: Option<&str>) -> Result<ProfileRequest, String> {
    let mut request = ProfileRequest {
        seconds: DEFAULT_SECONDS,
        format: Format::Pprof,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "seconds" => {
                request.seconds = value
                    .parse()
                    .ok()
                    .filter(|s| (1..=MAX_SECONDS).contains(s))
                    .ok_or_else(|| {
                        format!(
                            "seconds={value:?}: give a whole number of seconds from 1 to {MAX_SECONDS}"
                        )
                    })?;
            }
            "format" => {
                request.format = match value {
                    "" | "pprof" | "proto" => Format::Pprof,
                    "flamegraph" | "svg" => Format::Flamegraph,
                    other => {
                        return Err(format!(
                            "format={other:?}: use pprof (the default) or flamegraph"
                        ))
                    }
                };
            }
            _ => {}
        }
    }
    Ok(request)
}

/// Set while a profile is taken.
static TAKING: AtomicBool = AtomicBool::new(false);

/// The one profile being taken; dropping it (done, failed, or the client gone) frees the slot.
struct Taking;

impl Taking {
    fn start() -> Option<Taking> {
        TAKING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Taking)
    }
}

impl Drop for Taking {
    fn drop(&mut self) {
        TAKING.store(false, Ordering::Release);
    }
}

pub async fn profile(uri: Uri) -> Response {
    let request = match parse(uri.query()) {
        Ok(request) => request,
        Err(message) => return (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response(),
    };
    let Some(taking) = Taking::start() else {
        return (
            StatusCode::CONFLICT,
            "a CPU profile is being taken already (one at a time): ask again when it is done\n",
        )
            .into_response();
    };
    let guard = match pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .blocklist(&BLOCKLIST)
        .build()
    {
        Ok(guard) => guard,
        Err(error) => return failed(format!("cannot start the CPU profiler: {error}")),
    };
    tokio::time::sleep(Duration::from_secs(request.seconds)).await;
    // Symbolizing the samples takes a while: off the runtime's threads.
    let encoded = tokio::task::spawn_blocking(move || {
        let encoded = encode(&guard, request.format);
        drop(guard);
        drop(taking);
        encoded
    })
    .await;
    match encoded {
        Ok(Ok(body)) => match request.format {
            Format::Pprof => (
                [
                    (header::CONTENT_TYPE, "application/octet-stream"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"profile\"",
                    ),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                body,
            )
                .into_response(),
            Format::Flamegraph => ([(header::CONTENT_TYPE, "image/svg+xml")], body).into_response(),
        },
        Ok(Err(message)) => failed(message),
        Err(error) => failed(format!("encoding the CPU profile failed: {error}")),
    }
}

/// The profile taken so far in `format`.
fn encode(guard: &pprof::ProfilerGuard<'_>, format: Format) -> Result<Vec<u8>, String> {
    let report = guard
        .report()
        .build()
        .map_err(|e| format!("reading the CPU profile: {e}"))?;
    match format {
        Format::Pprof => {
            let profile = report
                .pprof()
                .map_err(|e| format!("encoding the CPU profile: {e}"))?;
            let bytes = pprof::protos::Message::encode_to_vec(&profile);
            let mut gzip =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gzip.write_all(&bytes)
                .and_then(|_| gzip.finish())
                .map_err(|e| format!("compressing the CPU profile: {e}"))
        }
        Format::Flamegraph => {
            let mut svg = Vec::new();
            report
                .flamegraph(&mut svg)
                .map_err(|e| format!("drawing the flame graph: {e}"))?;
            if svg.is_empty() {
                // pprof-rs draws nothing without samples.
                svg = IDLE_SVG.as_bytes().to_vec();
            }
            Ok(svg)
        }
    }
}

fn failed(message: String) -> Response {
    tracing::warn!("{message}");
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{message}\n")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_format_are_read_and_bad_values_refused() {
        let parsed = |q: Option<&str>| parse(q).map(|r| (r.seconds, r.format));
        assert_eq!(parsed(None), Ok((30, Format::Pprof)));
        assert_eq!(parsed(Some("seconds=5")), Ok((5, Format::Pprof)));
        assert_eq!(
            parsed(Some("debug=0&seconds=300&format=flamegraph")),
            Ok((300, Format::Flamegraph))
        );
        for bad in [
            "seconds=0",
            "seconds=301",
            "seconds=-1",
            "seconds=abc",
            "seconds=",
            "format=png",
        ] {
            assert!(parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_profile_at_a_time() {
        let first = Taking::start().unwrap();
        assert!(Taking::start().is_none());
        drop(first);
        assert!(Taking::start().is_some());
    }
}
