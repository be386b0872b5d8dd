//! One `key[=value]` field of a `--mount` value (upstream `parseMount`
//! loop body).

use super::go_parse_bool;
use super::mount::{Mount, MountType, ShareMode};
use crate::error::ExpandError;
use crate::suggest;

const ALL_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// Applies one field to `m`, expanding its value with `expand`.
pub(super) fn apply_field<F>(
    m: &mut Mount,
    ro_auto: &mut bool,
    field: &str,
    expand: &mut F,
) -> Result<(), ExpandError>
where
    F: FnMut(&str) -> Result<String, ExpandError>,
{
    let Some((key, value)) = field.split_once('=') else {
        return flag_field(m, ro_auto, &field.to_lowercase(), field).map_err(ExpandError::from);
    };
    let key = key.to_lowercase();
    let value = expand(value)?;
    keyed_field(m, ro_auto, &key, value, field).map_err(ExpandError::from)
}

/// A field without `=`.
fn flag_field(m: &mut Mount, ro_auto: &mut bool, key: &str, field: &str) -> Result<(), String> {
    match key {
        "readonly" | "ro" => m.read_only = true,
        "readwrite" | "rw" => m.read_only = false,
        "required" => {
            require_type(m, key, &[MountType::Secret, MountType::Ssh])?;
            m.required = true;
            return Ok(());
        }
        _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
    }
    *ro_auto = false;
    Ok(())
}

fn require_type(m: &Mount, key: &str, allowed: &[MountType]) -> Result<(), String> {
    if allowed.contains(&m.mount_type) {
        Ok(())
    } else {
        Err(format!(
            "unexpected key '{key}' for mount type '{}'",
            m.mount_type.as_str()
        ))
    }
}

fn non_empty(v: String) -> Option<String> {
    (!v.is_empty()).then_some(v)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    go_parse_bool(value).ok_or_else(|| format!("invalid value for {key}: {value}"))
}

/// A `key=value` field with its value already expanded.
fn keyed_field(
    m: &mut Mount,
    ro_auto: &mut bool,
    key: &str,
    value: String,
    field: &str,
) -> Result<(), String> {
    match key {
        "type" => m.mount_type = mount_type(&value)?,
        "from" => m.from = non_empty(value),
        "source" | "src" => m.source = non_empty(value),
        "target" | "dst" | "destination" => m.target = non_empty(value),
        "readonly" | "ro" => {
            m.read_only = parse_bool(key, &value)?;
            *ro_auto = false;
        }
        "readwrite" | "rw" => {
            m.read_only = !parse_bool(key, &value)?;
            *ro_auto = false;
        }
        "required" => {
            require_type(m, key, &[MountType::Secret, MountType::Ssh])?;
            m.required = parse_bool(key, &value)?;
        }
        "size" => {
            require_type(m, key, &[MountType::Tmpfs])?;
            let size =
                ram_in_bytes(&value).ok_or_else(|| format!("invalid value for {key}: {value}"))?;
            m.size_limit = Some(size);
        }
        "id" => m.cache_id = non_empty(value),
        "sharing" => m.sharing = Some(share_mode(&value)?),
        "mode" => {
            m.mode = Some(
                parse_u32(&value, 8).ok_or_else(|| format!("invalid value {value} for mode"))?,
            )
        }
        "uid" => {
            m.uid = Some(
                parse_u32(&value, 10).ok_or_else(|| format!("invalid value {value} for uid"))?,
            )
        }
        "gid" => {
            m.gid = Some(
                parse_u32(&value, 10).ok_or_else(|| format!("invalid value {value} for gid"))?,
            )
        }
        "env" => m.env = Some(value),
        _ => {
            let msg = format!("unexpected key '{key}' in '{field}'");
            return Err(suggest::wrap(msg, key, ALL_KEYS, true));
        }
    }
    Ok(())
}

fn mount_type(value: &str) -> Result<MountType, String> {
    Ok(match value.to_lowercase().as_str() {
        "bind" => MountType::Bind,
        "cache" => MountType::Cache,
        "tmpfs" => MountType::Tmpfs,
        "secret" => MountType::Secret,
        "ssh" => MountType::Ssh,
        _ => {
            let msg = format!("unsupported mount type {}", crate::quote::go_quote(value));
            return Err(suggest::wrap(
                msg,
                value,
                &["bind", "cache", "tmpfs", "secret", "ssh"],
                true,
            ));
        }
    })
}

fn share_mode(value: &str) -> Result<ShareMode, String> {
    Ok(match value.to_lowercase().as_str() {
        "shared" => ShareMode::Shared,
        "private" => ShareMode::Private,
        "locked" => ShareMode::Locked,
        _ => {
            let msg = format!(
                "unsupported sharing value {}",
                crate::quote::go_quote(value)
            );
            return Err(suggest::wrap(
                msg,
                value,
                &["shared", "private", "locked"],
                true,
            ));
        }
    })
}

/// Go `strconv.ParseUint(value, radix, 32)`: digits only, no sign.
fn parse_u32(value: &str, radix: u32) -> Option<u32> {
    if value.is_empty() || !value.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(value, radix).ok()
}

/// docker/go-units `RAMInBytes`: a number with an optional binary unit
/// suffix (`k`, `kb`, `kib`, …, case-insensitive).
fn ram_in_bytes(s: &str) -> Option<i64> {
    let sep = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size: f64 = num.parse().ok()?;
    if size < 0.0 {
        return None;
    }
    let sfx = sfx.to_lowercase();
    let mul: f64 = match sfx.as_str() {
        "" | "b" => 1.0,
        _ => unit_multiplier(&sfx)?,
    };
    Some((size * mul) as i64)
}

fn unit_multiplier(sfx: &str) -> Option<f64> {
    let b = sfx.as_bytes();
    if b.len() > 3 || !(b.len() == 1 || &b[1..] == b"b" || &b[1..] == b"ib") {
        return None;
    }
    let exp = match b[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return None,
    };
    Some(1024f64.powi(exp))
}

#[cfg(test)]
mod tests {
    use super::{parse_u32, ram_in_bytes};

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("10"), Some(10));
        assert_eq!(ram_in_bytes("1k"), Some(1024));
        assert_eq!(ram_in_bytes("1.5MiB"), Some(1572864));
        assert_eq!(ram_in_bytes("2 GB"), Some(2 * 1024 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1x"), None);
        assert_eq!(ram_in_bytes("k"), None);
        assert_eq!(ram_in_bytes("1kbb"), None);
        assert_eq!(ram_in_bytes("1é"), None);
        assert_eq!(parse_u32("0755", 8), Some(0o755));
        assert_eq!(parse_u32("+1", 10), None);
        assert_eq!(parse_u32("8", 8), None);
    }
}
