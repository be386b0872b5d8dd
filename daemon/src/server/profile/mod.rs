//! `GET /debug/pprof/profile?seconds=N` on the debug listener: a CPU profile of nodekitd, taken by
//! sampling its threads 99 times a second for N seconds (default 30, at most 300) with pprof-rs,
//! served as Go serves it: a gzipped pprof protobuf, so `go tool pprof
//! http://ADDR/debug/pprof/profile?seconds=10` and every pprof viewer read it (`go tool pprof
//! -http` draws the flame graph). The sampler is process-wide: one profile at a time (another request meanwhile is refused with 409), and a client that goes
//! away stops it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use prost::Message;

mod pprof_format;

const DEFAULT_SECONDS: u64 = 30;
const MAX_SECONDS: u64 = 300;
/// Samples a second: not a divisor of common timer periods, as Go's 100 Hz is not.
const FREQUENCY: i32 = 99;
/// Libraries whose frames are not unwound from a signal handler (unwinding through them is
/// unsafe there, and their time shows as the caller's).
const BLOCKLIST: [&str; 4] = ["libc", "libgcc", "pthread", "vdso"];

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
struct ProfileRequest {
    seconds: u64,
}

/// Reads `seconds` (and `format`, which may only name the one served) from the query. Go's
/// `debug` does not change a CPU profile (Go's handler ignores it too); any other parameter is
/// refused by name rather than ignored.
fn parse(query: Option<&str>) -> Result<ProfileRequest, String> {
    let mut request = ProfileRequest {
        seconds: DEFAULT_SECONDS,
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
            "format" if !matches!(value, "" | "pprof" | "proto") => {
                return Err(format!(
                    "format={value:?}: only pprof's protobuf is served; `go tool pprof -http` draws its flame graph"
                ));
            }
            "format" | "debug" => {}
            other => {
                return Err(format!(
                    "{other:?}: not a parameter of a CPU profile (seconds, format)"
                ));
            }
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
        let encoded = encode(&guard);
        drop(guard);
        drop(taking);
        encoded
    })
    .await;
    match encoded {
        Ok(Ok(body)) => (
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
        Ok(Err(message)) => failed(message),
        Err(error) => failed(format!("encoding the CPU profile failed: {error}")),
    }
}

/// The profile taken so far, as a gzipped pprof protobuf.
fn encode(guard: &pprof::ProfilerGuard<'_>) -> Result<Vec<u8>, String> {
    let report = guard
        .report()
        .build()
        .map_err(|e| format!("reading the CPU profile: {e}"))?;
    let bytes = pprof_format::profile(&report).encode_to_vec();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&bytes)
        .and_then(|_| gzip.finish())
        .map_err(|e| format!("compressing the CPU profile: {e}"))
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
        let parsed = |q: Option<&str>| parse(q).map(|r| r.seconds);
        assert_eq!(parsed(None), Ok(30));
        assert_eq!(parsed(Some("seconds=5")), Ok(5));
        assert_eq!(parsed(Some("debug=0&seconds=300&format=pprof")), Ok(300));
        for bad in [
            "seconds=0",
            "seconds=301",
            "seconds=-1",
            "seconds=abc",
            "seconds=",
            "format=png",
            "format=flamegraph",
            "gc=1",
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
