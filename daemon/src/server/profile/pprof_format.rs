//! A sampled report in the pprof profile format (`perftools.profiles.Profile`, nodekit-proto's
//! own definition, encoded with the workspace's prost). pprof-rs can encode it too, but only
//! through a second prost and sha2 of older majors; the format is small enough to fill here.

use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use nodekit_proto::perftools::profiles::{
    Function, Label, Line, Location, Profile, Sample, ValueType,
};

/// Builds a profile, interning strings, functions and locations as it goes.
#[derive(Default)]
struct ProfileBuilder {
    profile: Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(i64, i64), u64>,
    locations: HashMap<(u64, i64), u64>,
}

impl ProfileBuilder {
    fn new() -> ProfileBuilder {
        let mut builder = ProfileBuilder::default();
        // The format requires "" at index 0.
        builder.string("");
        builder
    }

    fn string(&mut self, text: &str) -> i64 {
        if let Some(index) = self.strings.get(text) {
            return *index;
        }
        let index = self.profile.string_table.len() as i64;
        self.profile.string_table.push(text.to_string());
        self.strings.insert(text.to_string(), index);
        index
    }

    fn value_type(&mut self, kind: &str, unit: &str) -> ValueType {
        ValueType {
            r#type: self.string(kind),
            unit: self.string(unit),
        }
    }

    fn function(&mut self, name: &str, system_name: &str, filename: &str) -> u64 {
        let name = self.string(name);
        let system_name = self.string(system_name);
        let filename = self.string(filename);
        let next = self.profile.function.len() as u64 + 1;
        let id = *self
            .functions
            .entry((system_name, filename))
            .or_insert(next);
        if id == next {
            self.profile.function.push(Function {
                id,
                name,
                system_name,
                filename,
                start_line: 0,
            });
        }
        id
    }

    /// One location per symbol and line: pprof-rs resolves inlined frames to symbols of their own.
    fn location(&mut self, symbol: &pprof::Symbol) -> u64 {
        let filename = symbol
            .filename
            .as_ref()
            .map(|path| path.to_string_lossy().into_owned())
            .unwrap_or_default();
        let function_id = self.function(&symbol.name(), &symbol.sys_name(), &filename);
        let line = symbol.lineno.map_or(0, i64::from);
        let next = self.profile.location.len() as u64 + 1;
        let id = *self.locations.entry((function_id, line)).or_insert(next);
        if id == next {
            self.profile.location.push(Location {
                id,
                line: vec![Line {
                    function_id,
                    line,
                    column: 0,
                }],
                ..Location::default()
            });
        }
        id
    }

    fn sample(&mut self, frames: &pprof::Frames, count: isize, period_nanos: i64) {
        let location_id = frames
            .frames
            .iter()
            .skip_while(|frame| frame.iter().any(is_the_samplers_own))
            .flatten()
            .map(|symbol| self.location(symbol))
            .collect();
        let label = vec![Label {
            key: self.string("thread"),
            str: self.string(&frames.thread_name_or_id()),
            ..Label::default()
        }];
        let count = count as i64;
        self.profile.sample.push(Sample {
            location_id,
            value: vec![count, count * period_nanos],
            label,
        });
    }
}

/// A frame of the signal handler that took the sample (innermost in every trace): without
/// them the time shows where it was spent, not in the sampler.
fn is_the_samplers_own(symbol: &pprof::Symbol) -> bool {
    let name = symbol.name();
    let name = name.trim_start_matches('<');
    name.starts_with("backtrace::") || name.starts_with("pprof::")
}

/// The report as a pprof profile: samples counted and as CPU time (`go tool pprof` shows the
/// latter by default), each labelled with its thread's name.
pub(super) fn profile(report: &pprof::Report) -> Profile {
    let mut builder = ProfileBuilder::new();
    let period_nanos = 1_000_000_000 / i64::from(report.timing.frequency.max(1));
    let sample_type = vec![
        builder.value_type("samples", "count"),
        builder.value_type("cpu", "nanoseconds"),
    ];
    let period_type = builder.value_type("cpu", "nanoseconds");
    for (frames, count) in &report.data {
        builder.sample(frames, *count, period_nanos);
    }
    let time_nanos = report
        .timing
        .start_time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i64);
    Profile {
        sample_type,
        period_type: Some(period_type),
        period: period_nanos,
        time_nanos,
        duration_nanos: report.timing.duration.as_nanos() as i64,
        ..builder.profile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_start_empty_and_are_interned_once() {
        let mut builder = ProfileBuilder::new();
        assert_eq!(builder.string("cpu"), 1);
        assert_eq!(builder.string("cpu"), 1);
        assert_eq!(builder.profile.string_table, ["", "cpu"]);
    }

    #[test]
    fn a_function_and_its_line_are_recorded_once() {
        let mut builder = ProfileBuilder::new();
        let first = builder.function("f", "_ZN1f", "f.rs");
        let again = builder.function("f", "_ZN1f", "f.rs");
        let other = builder.function("g", "_ZN1g", "f.rs");
        assert_eq!((first, again, other), (1, 1, 2));
        assert_eq!(builder.profile.function.len(), 2);
    }

    #[test]
    fn the_samplers_own_frames_are_recognised() {
        let symbol = |name: &str| pprof::Symbol {
            name: Some(name.as_bytes().to_vec()),
            addr: None,
            lineno: None,
            filename: None,
        };
        assert!(is_the_samplers_own(&symbol(
            "backtrace::backtrace::trace_unsynchronized"
        )));
        assert!(is_the_samplers_own(&symbol(
            "<pprof::backtrace::backtrace_rs::Trace as pprof::backtrace::Trace>::trace"
        )));
        assert!(!is_the_samplers_own(&symbol(
            "nodekitd::server::debug::metrics"
        )));
    }
}
