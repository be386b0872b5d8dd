//! `ListenBuildHistory`'s filters, as buildkitd reads them: the strings are alternatives; each
//! is a comma-separated list whose terms must all hold. A term is a time comparison
//! (`startedAt`, `completedAt` against a duration ago or an RFC 3339 time; `duration` against a
//! duration; with `>=`, `<=`, `>` or `<`) or a containerd-style selector on `ref`, `status`
//! (`running`, `completed`, `error`, `canceled`) or `repository`.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cachestore::filter::{Fielded, Filters};
use nodekit_proto::moby::buildkit::v1::BuildHistoryRecord;

/// Parsed filters; empty matches every record.
pub struct HistoryFilters {
    any: Vec<Vec<Term>>,
}

enum Term {
    Time(TimeTerm),
    Selectors(Filters),
}

struct TimeTerm {
    field: TimeField,
    op: Comparison,
    /// Unix seconds for times, nanoseconds for the duration.
    value: i128,
}

#[derive(Clone, Copy)]
enum TimeField {
    StartedAt,
    CompletedAt,
    Duration,
}

#[derive(Clone, Copy)]
enum Comparison {
    AtLeast,
    AtMost,
    Above,
    Below,
}

impl HistoryFilters {
    pub fn parse(filters: &[String], now: SystemTime) -> Result<HistoryFilters, String> {
        let any = filters
            .iter()
            .map(|filter| parse_terms(filter, now))
            .collect::<Result<_, _>>()?;
        Ok(HistoryFilters { any })
    }

    pub fn matches(&self, record: &BuildHistoryRecord) -> bool {
        self.any.is_empty()
            || self
                .any
                .iter()
                .any(|terms| terms.iter().all(|term| term.matches(record)))
    }
}

fn parse_terms(filter: &str, now: SystemTime) -> Result<Vec<Term>, String> {
    let mut terms = Vec::new();
    let mut selectors = Vec::new();
    for field in split_fields(filter) {
        match TimeTerm::parse(&field, now)? {
            Some(time) => terms.push(Term::Time(time)),
            None => selectors.push(field),
        }
    }
    if !selectors.is_empty() {
        let joined = selectors.join(",");
        let parsed = Filters::parse(&[joined])
            .map_err(|e| format!("failed to parse history filters [{filter}]: {e}"))?;
        terms.push(Term::Selectors(parsed));
    }
    Ok(terms)
}

/// The comma-separated fields of `filter`; a comma inside double quotes belongs to its field.
fn split_fields(filter: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in filter.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => fields.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    fields.push(current);
    fields
        .into_iter()
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect()
}

impl TimeTerm {
    /// A time comparison, or None when `field` is something else.
    fn parse(field: &str, now: SystemTime) -> Result<Option<TimeTerm>, String> {
        let found = [
            (">=", Comparison::AtLeast),
            ("<=", Comparison::AtMost),
            (">", Comparison::Above),
            ("<", Comparison::Below),
        ]
        .into_iter()
        .find_map(|(sep, op)| field.find(sep).map(|at| (at, sep, op)));
        let Some((at, sep, op)) = found else {
            return Ok(None);
        };
        let (key, value) = (&field[..at], &field[at + sep.len()..]);
        let (field, value) = match key {
            "startedAt" => (TimeField::StartedAt, time_value(value, now)?),
            "completedAt" => (TimeField::CompletedAt, time_value(value, now)?),
            "duration" => {
                let d = go_duration(value).ok_or(format!("invalid duration {value}"))?;
                (TimeField::Duration, d.as_nanos() as i128)
            }
            _ => return Ok(None),
        };
        Ok(Some(TimeTerm { field, op, value }))
    }

    fn matches(&self, record: &BuildHistoryRecord) -> bool {
        let created = record.created_at.as_ref().map_or(0, |t| t.seconds);
        let completed = record.completed_at.as_ref();
        let actual = match self.field {
            TimeField::StartedAt => i128::from(created),
            TimeField::CompletedAt => completed.map_or(0, |t| i128::from(t.seconds)),
            TimeField::Duration => completed.map_or(0, |end| {
                let start = record.created_at.unwrap_or_default();
                nanos(end) - nanos(&start)
            }),
        };
        match self.op {
            Comparison::AtLeast => actual >= self.value,
            Comparison::AtMost => actual <= self.value,
            Comparison::Above => actual > self.value,
            Comparison::Below => actual < self.value,
        }
    }
}

fn nanos(t: &prost_types::Timestamp) -> i128 {
    i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
}

/// Unix seconds of `value`: a duration before `now`, or an RFC 3339 time.
fn time_value(value: &str, now: SystemTime) -> Result<i128, String> {
    let at = match go_duration(value) {
        Some(ago) => now.checked_sub(ago).unwrap_or(UNIX_EPOCH),
        None => {
            humantime::parse_rfc3339_weak(value).map_err(|_| format!("invalid time {value}"))?
        }
    };
    Ok(at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::from(d.as_secs())))
}

/// A Go duration (`90s`, `1h30m`); a bare number is not one.
fn go_duration(value: &str) -> Option<Duration> {
    if value.parse::<f64>().is_ok() && value != "0" {
        return None;
    }
    cachestore::gc::parse_duration(value).ok()
}

impl Term {
    fn matches(&self, record: &BuildHistoryRecord) -> bool {
        match self {
            Term::Time(term) => term.matches(record),
            Term::Selectors(filters) => filters.matches(&RecordFields(record)),
        }
    }
}

/// The fields selectors see, as buildkitd's adaptor gives them.
struct RecordFields<'a>(&'a BuildHistoryRecord);

impl Fielded for RecordFields<'_> {
    fn field(&self, field: &str) -> (Cow<'_, str>, bool) {
        let record = self.0;
        match field {
            "ref" => (Cow::Borrowed(&record.r#ref), !record.r#ref.is_empty()),
            "status" => (Cow::Borrowed(status_of(record)), true),
            "repository" => match record.frontend_attrs.get("vcs:source") {
                Some(source) => (Cow::Borrowed(source), true),
                None => (Cow::Borrowed(""), false),
            },
            _ => (Cow::Borrowed(""), false),
        }
    }
}

/// `running`, `completed`, `error` or `canceled`.
pub fn status_of(record: &BuildHistoryRecord) -> &'static str {
    match (&record.completed_at, &record.error) {
        (None, _) => "running",
        (Some(_), None) => "completed",
        (Some(_), Some(error))
            if error.code == tonic::Code::Cancelled as i32
                || error.message.contains("context canceled") =>
        {
            "canceled"
        }
        (Some(_), Some(_)) => "error",
    }
}

#[cfg(test)]
mod tests {
    use nodekit_proto::google::rpc::Status as RpcStatus;

    use super::*;

    fn at(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn record(reference: &str, created: i64, completed: Option<i64>) -> BuildHistoryRecord {
        BuildHistoryRecord {
            r#ref: reference.into(),
            created_at: at(created),
            completed_at: completed.and_then(at),
            ..Default::default()
        }
    }

    fn matching(filters: &[&str], records: &[BuildHistoryRecord]) -> Vec<String> {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let parsed = HistoryFilters::parse(&filters, now).unwrap();
        records
            .iter()
            .filter(|r| parsed.matches(r))
            .map(|r| r.r#ref.clone())
            .collect()
    }

    #[test]
    fn selectors_and_times_combine_as_buildkitd_reads_them() {
        let mut failed = record("failed", 9_000, Some(9_100));
        failed.error = Some(RpcStatus {
            code: 2,
            message: "boom".into(),
            details: vec![],
        });
        let records = vec![
            record("old", 1_000, Some(1_010)),
            record("new", 9_500, Some(9_900)),
            record("running", 9_990, None),
            failed,
        ];
        assert_eq!(matching(&[], &records).len(), 4);
        assert_eq!(matching(&["ref==new"], &records), vec!["new"]);
        assert_eq!(matching(&["status==error"], &records), vec!["failed"]);
        assert_eq!(matching(&["status==running"], &records), vec!["running"]);
        assert_eq!(
            matching(&["startedAt>1h"], &records),
            vec!["new", "running", "failed"]
        );
        assert_eq!(matching(&["duration>=5m"], &records), vec!["new"]);
        assert_eq!(
            matching(&["status==completed,startedAt<2h"], &records),
            vec!["old"]
        );
        assert_eq!(
            matching(&["ref==old", "ref==new"], &records),
            vec!["old", "new"]
        );
        assert_eq!(
            matching(&["startedAt>1970-01-01T02:30:00Z"], &records),
            vec!["new", "running"]
        );
    }

    #[test]
    fn bad_filters_are_refused() {
        let now = SystemTime::now();
        assert!(HistoryFilters::parse(&["startedAt>yesterday".into()], now).is_err());
        assert!(HistoryFilters::parse(&["duration<soon".into()], now).is_err());
        assert!(HistoryFilters::parse(&["ref==\"unterminated".into()], now).is_err());
    }
}
