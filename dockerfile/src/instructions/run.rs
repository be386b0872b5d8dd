//! `RUN` flags: `--mount`, `--network`, `--security`, `--device`.

use super::flags::{self, Kind};
use super::mount::{self, MountSpec};
use super::types::{CommandLine, RunInstruction};
use super::{csv, go_parse_bool};
use crate::ast::Node;
use crate::suggest;

/// `RUN --network=…`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// The default network (`default`).
    #[default]
    Default,
    /// No network (`none`).
    None,
    /// Host network (`host`, needs the `network.host` entitlement).
    Host,
}

/// `RUN --security=…`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecurityMode {
    /// Default sandbox (`sandbox`).
    #[default]
    Sandbox,
    /// Privileged (`insecure`, needs the `security.insecure` entitlement).
    Insecure,
}

/// `RUN --device=name[,required[=bool]]` (CDI device).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    /// Device name (e.g. `vendor.com/class=name`).
    pub name: String,
    /// Fail when the device is unavailable.
    pub required: bool,
}

const RUN_FLAGS: &[(&str, Kind)] = &[
    ("device", Kind::List),
    ("mount", Kind::List),
    ("network", Kind::Str),
    ("security", Kind::Str),
];

/// Builds the typed RUN from its node (validation order as upstream:
/// flags, devices, mounts, network, security).
pub(crate) fn parse_run(node: &Node) -> Result<RunInstruction, String> {
    let values = flags::parse(&node.flags, RUN_FLAGS)?;
    let devices = values
        .list("device")
        .iter()
        .map(|d| parse_device(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mounts = values
        .list("mount")
        .into_iter()
        .map(|raw| mount::check_unexpanded(&raw).map(|_| MountSpec { raw }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RunInstruction {
        command: command_line(node),
        heredocs: node.heredocs.clone(),
        mounts,
        network: parse_network(values.raw("network").unwrap_or("default"))?,
        security: parse_security(values.raw("security").unwrap_or("sandbox"))?,
        devices,
        flags_used: values.used(),
    })
}

/// Shell or exec form of a command instruction (upstream
/// `handleJSONArgs`).
pub(crate) fn command_line(node: &Node) -> CommandLine {
    let args = if node.json || node.args.is_empty() {
        node.args.clone()
    } else {
        vec![node.args.join(" ")]
    };
    CommandLine {
        args,
        prepend_shell: !node.json,
    }
}

fn parse_network(value: &str) -> Result<NetworkMode, String> {
    match value {
        "default" => Ok(NetworkMode::Default),
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        _ => Err(format!(
            "invalid network mode {}",
            crate::quote::go_quote(value)
        )),
    }
}

fn parse_security(value: &str) -> Result<SecurityMode, String> {
    match value {
        "sandbox" => Ok(SecurityMode::Sandbox),
        "insecure" => Ok(SecurityMode::Insecure),
        _ => Err(format!(
            "security {} is not valid",
            crate::quote::go_quote(value)
        )),
    }
}

/// Parses a `--device` value (upstream `ParseDevice`).
pub fn parse_device(value: &str) -> Result<Device, String> {
    let fields = csv::fields(value).map_err(|e| format!("failed to parse csv devices: {e}"))?;
    let mut d = Device::default();
    for field in fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        match (key.as_str(), val) {
            ("required", None) => d.required = true,
            (_, None) if d.name.is_empty() => d.name = field.clone(),
            (_, None) => return Err(format!("invalid field '{field}' must be a key=value pair")),
            ("name", Some(v)) => {
                if !d.name.is_empty() {
                    return Err(format!("device name already set to {}", d.name));
                }
                d.name = v.to_string();
            }
            ("required", Some(v)) => {
                d.required =
                    go_parse_bool(v).ok_or_else(|| format!("invalid value for {key}: {v}"))?;
            }
            (_, Some(_)) if d.name.is_empty() => d.name = field.clone(),
            (_, Some(_)) => {
                let msg = format!("unexpected key '{key}' in '{field}'");
                return Err(suggest::wrap(msg, &key, &["name", "required"], true));
            }
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices() {
        let d = |s: &str| parse_device(s);
        assert_eq!(d("/dev/fuse").map(|d| d.name), Ok("/dev/fuse".into()));
        assert_eq!(
            d("vendor.com/gpu=all,required").map(|d| (d.name, d.required)),
            Ok(("vendor.com/gpu=all".into(), true))
        );
        assert_eq!(
            d("name=x,required=false").map(|d| (d.name, d.required)),
            Ok(("x".into(), false))
        );
        assert_eq!(
            d("a,b"),
            Err("invalid field 'b' must be a key=value pair".into())
        );
        assert_eq!(d("a,name=b"), Err("device name already set to a".into()));
        assert_eq!(
            d("a,requird=1"),
            Err("unexpected key 'requird' in 'requird=1' (did you mean required?)".into())
        );
        assert_eq!(
            d("a,required=maybe"),
            Err("invalid value for required: maybe".into())
        );
    }
}
