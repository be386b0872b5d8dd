//! An image config's history: one entry per layer that is not marked empty, and a time on
//! every entry (its layer's, or the entry before it's), as BuildKit's exporter writes them.

use serde_json::{json, Value};

/// Gives every history entry without a time one: a layer's entry the time its layer was made
/// (`times`, one per layer, None for a base image's), an empty-layer entry the time of the
/// entry before it (or of the first new layer, for entries ahead of any).
pub(crate) fn fill_history_times(history: &mut [Value], times: &[Option<u64>]) {
    let first_new = times
        .iter()
        .flatten()
        .next()
        .map(|ms| json!(layer_time(*ms)));
    let mut layer = 0;
    let mut previous: Option<Value> = None;
    for entry in history.iter_mut() {
        let empty = entry.get("empty_layer").and_then(Value::as_bool) == Some(true);
        if entry.get("created").is_none_or(Value::is_null) {
            let own = if empty {
                None
            } else {
                times
                    .get(layer)
                    .copied()
                    .flatten()
                    .map(|ms| json!(layer_time(ms)))
            };
            if let Some(time) = own
                .or_else(|| previous.clone())
                .or_else(|| first_new.clone())
            {
                entry["created"] = time;
            }
        }
        if !empty {
            layer += 1;
        }
        previous = entry.get("created").cloned().or(previous);
    }
}

/// RFC 3339 (milliseconds) of a layer's creation time; now when it is unknown.
pub(crate) fn layer_time(created_ms: u64) -> String {
    match created_ms {
        0 => now(),
        ms => {
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            humantime::format_rfc3339_millis(time).to_string()
        }
    }
}

pub(crate) fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// `history` with exactly `layers` entries not marked `empty_layer`.
pub(crate) fn reconcile_history(history: Option<&Value>, layers: usize) -> Vec<Value> {
    let mut history = history
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_empty = |h: &Value| {
        h.get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let mut non_empty = history.iter().filter(|h| !is_empty(h)).count();
    for entry in history.iter_mut().rev() {
        if non_empty <= layers {
            break;
        }
        if !is_empty(entry) {
            entry["empty_layer"] = json!(true);
            non_empty -= 1;
        }
    }
    for _ in non_empty..layers {
        history.push(json!({"created_by": "nodekit build step"}));
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_times_come_from_the_layers() {
        let mut history = vec![
            json!({"created": "2020-01-01T00:00:00Z", "created_by": "base"}),
            json!({"created_by": "ENV", "empty_layer": true}),
            json!({"created_by": "RUN"}),
            json!({"created_by": "CMD", "empty_layer": true}),
        ];
        fill_history_times(&mut history, &[None, Some(1_700_000_000_123)]);
        assert_eq!(history[0]["created"], "2020-01-01T00:00:00Z");
        assert_eq!(history[1]["created"], "2020-01-01T00:00:00Z");
        assert_eq!(history[2]["created"], "2023-11-14T22:13:20.123Z");
        assert_eq!(history[3]["created"], "2023-11-14T22:13:20.123Z");
        // An entry ahead of every dated one takes the first new layer's time.
        let mut early = vec![
            json!({"created_by": "ARG", "empty_layer": true}),
            json!({"created_by": "RUN"}),
        ];
        fill_history_times(&mut early, &[Some(1_700_000_000_123)]);
        assert_eq!(early[0]["created"], "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn history_gets_one_non_empty_entry_per_layer() {
        let given = json!([{"created_by": "FROM"}, {"created_by": "ENV", "empty_layer": true}, {"created_by": "RUN"}]);
        let fewer = reconcile_history(Some(&given), 1);
        assert_eq!(fewer[2]["empty_layer"], json!(true));
        assert_eq!(fewer[0].get("empty_layer"), None);
        let more = reconcile_history(Some(&given), 3);
        assert_eq!(more.len(), 4);
        assert_eq!(more[3]["created_by"], "nodekit build step");
    }
}
