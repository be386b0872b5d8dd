//! `HEALTHCHECK NONE` / `HEALTHCHECK [flags] CMD …` and Go duration
//! parsing for its interval flags.

use std::time::Duration;

use super::flags::{self, Kind, Values};
use super::run::command_line;
use super::types::HealthcheckInstruction;
use crate::ast::Node;
use crate::quote::go_quote;

const FLAGS: &[(&str, Kind)] = &[
    ("interval", Kind::Str),
    ("timeout", Kind::Str),
    ("start-period", Kind::Str),
    ("start-interval", Kind::Str),
    ("retries", Kind::Str),
];

/// Builds the typed HEALTHCHECK (flags are ignored for `NONE`, as
/// upstream).
pub(crate) fn parse_healthcheck(node: &Node) -> Result<HealthcheckInstruction, String> {
    let Some(first) = node.args.first() else {
        return Err("HEALTHCHECK requires at least one argument".into());
    };
    let typ = first.to_uppercase();
    let rest = &node.args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(HealthcheckInstruction {
            test: vec![typ],
            ..Default::default()
        });
    }
    let values = flags::parse(&node.flags, FLAGS)?;
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            go_quote(&typ)
        ));
    }
    let cmd = command_line(&Node {
        args: rest.to_vec(),
        ..node.clone()
    });
    if cmd.args.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let mut test = vec![if node.json { "CMD" } else { "CMD-SHELL" }.to_string()];
    test.extend(cmd.args);
    Ok(HealthcheckInstruction {
        test,
        interval: interval(&values, "interval")?,
        timeout: interval(&values, "timeout")?,
        start_period: interval(&values, "start-period")?,
        start_interval: interval(&values, "start-interval")?,
        retries: retries(&values)?,
    })
}

/// Optional interval flag: empty or zero means unset; otherwise at least
/// 1ms.
fn interval(values: &Values, name: &str) -> Result<Duration, String> {
    let Some(text) = values.string(name) else {
        return Ok(Duration::ZERO);
    };
    let nanos = parse_go_duration(&text)?;
    if nanos == 0 {
        return Ok(Duration::ZERO);
    }
    if nanos < 1_000_000 {
        return Err(format!(
            "Interval {} cannot be less than 1ms",
            go_quote(name)
        ));
    }
    Ok(Duration::from_nanos(nanos.unsigned_abs()))
}

fn retries(values: &Values) -> Result<u32, String> {
    let Some(text) = values.string("retries") else {
        return Ok(0);
    };
    let n: i32 = text.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing {}: {why}", go_quote(&text))
    })?;
    u32::try_from(n).map_err(|_| format!("--retries cannot be negative ({n})"))
}

/// Go `time.ParseDuration`, in nanoseconds.
pub(crate) fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let (neg, mut s) = match orig.as_bytes().first() {
        Some(b'-') => (true, &orig[1..]),
        Some(b'+') => (false, &orig[1..]),
        _ => (false, orig),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let (value, rest) = duration_component(s, orig).ok_or_else(invalid)??;
        total += value;
        if total > i64::MAX as i128 + i128::from(neg) {
            return Err(invalid());
        }
        s = rest;
    }
    let signed = if neg { -total } else { total };
    i64::try_from(signed).map_err(|_| invalid())
}

/// One `<number><unit>` component. `None` for a malformed number.
fn duration_component<'s>(s: &'s str, orig: &str) -> Option<Result<(i128, &'s str), String>> {
    let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
    let (int_part, mut rest) = s.split_at(int_len);
    let mut frac_part = "";
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        frac_part = &r[..n];
        rest = &r[n..];
    } else if int_len == 0 {
        return None;
    }
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let unit_len = rest
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_len);
    if unit.is_empty() {
        return Some(Err(format!(
            "time: missing unit in duration {}",
            go_quote(orig)
        )));
    }
    let Some(scale) = unit_nanos(unit) else {
        return Some(Err(format!(
            "time: unknown unit {} in duration {}",
            go_quote(unit),
            go_quote(orig)
        )));
    };
    let whole: i128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().ok()?
    };
    let mut value = whole.checked_mul(scale)?;
    if !frac_part.is_empty() {
        let digits = &frac_part[..frac_part.len().min(18)];
        let f: i128 = digits.parse().ok()?;
        value += f * scale / 10i128.pow(digits.len() as u32);
    }
    Some(Ok((value, rest)))
}

fn unit_nanos(unit: &str) -> Option<i128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_go_duration as d;

    #[test]
    fn go_durations() {
        assert_eq!(d("0"), Ok(0));
        assert_eq!(d("5s"), Ok(5_000_000_000));
        assert_eq!(d("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(d("1.5s"), Ok(1_500_000_000));
        assert_eq!(d(".5ms"), Ok(500_000));
        assert_eq!(d("-2us"), Ok(-2_000));
        assert_eq!(d("50ns"), Ok(50));
        assert_eq!(d("5"), Err("time: missing unit in duration \"5\"".into()));
        assert_eq!(
            d("5x"),
            Err("time: unknown unit \"x\" in duration \"5x\"".into())
        );
        assert_eq!(d(""), Err("time: invalid duration \"\"".into()));
        assert_eq!(d("s"), Err("time: invalid duration \"s\"".into()));
        assert_eq!(d("."), Err("time: invalid duration \".\"".into()));
        assert!(d("9999999999h").is_err());
    }
}
