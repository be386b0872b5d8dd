//! A JSON form of `pb.Definition` for tools (files, debugging): protobuf's JSON mapping, so
//! `def` entries are base64 strings (their exact bytes survive the round trip) and metadata
//! fields use their lowerCamelCase JSON names. The source map (`Source`) is not carried.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use nodekit_proto::pb;
use serde_json::{json, Map, Value};

/// A JSON text that is not a definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid definition JSON: {0}")]
pub struct DefinitionJsonError(String);

fn bad(what: impl Into<String>) -> DefinitionJsonError {
    DefinitionJsonError(what.into())
}

/// The definition as pretty-printed JSON.
pub fn definition_to_json(def: &pb::Definition) -> String {
    let ops: Vec<Value> = def
        .def
        .iter()
        .map(|op| Value::String(STANDARD.encode(op)))
        .collect();
    let metadata: Map<String, Value> = def
        .metadata
        .iter()
        .map(|(k, m)| (k.clone(), meta_to_json(m)))
        .collect();
    let value = json!({ "def": ops, "metadata": metadata });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// Reads a definition written by [`definition_to_json`] (or any protobuf JSON of one).
pub fn definition_from_json(text: &str) -> Result<pb::Definition, DefinitionJsonError> {
    let value: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut def = pb::Definition::default();
    for (i, op) in array(value.get("def"))?.iter().enumerate() {
        let text = op
            .as_str()
            .ok_or_else(|| bad(format!("def[{i}] is not a string")))?;
        let bytes = STANDARD
            .decode(text)
            .map_err(|e| bad(format!("def[{i}]: {e}")))?;
        def.def.push(bytes);
    }
    if let Some(metadata) = value.get("metadata").filter(|v| !v.is_null()) {
        let metadata = metadata
            .as_object()
            .ok_or_else(|| bad("metadata is not an object"))?;
        for (digest, meta) in metadata {
            def.metadata.insert(
                digest.clone(),
                meta_from_json(meta).map_err(|e| bad(format!("metadata[{digest:?}]: {}", e.0)))?,
            );
        }
    }
    Ok(def)
}

fn meta_to_json(m: &pb::OpMetadata) -> Value {
    let mut out = Map::new();
    if m.ignore_cache {
        out.insert("ignoreCache".into(), Value::Bool(true));
    }
    if !m.description.is_empty() {
        out.insert("description".into(), json!(m.description));
    }
    if let Some(export) = &m.export_cache {
        out.insert("exportCache".into(), json!({ "Value": export.value }));
    }
    if !m.caps.is_empty() {
        out.insert("caps".into(), json!(m.caps));
    }
    if let Some(g) = &m.progress_group {
        out.insert(
            "progressGroup".into(),
            json!({ "id": g.id, "name": g.name, "weak": g.weak }),
        );
    }
    if let Some(r) = &m.linux_resources {
        let resources = json!({
            "memory": r.memory.to_string(),
            "memorySwap": r.memory_swap.to_string(),
            "cpuShares": r.cpu_shares.to_string(),
            "cpuPeriod": r.cpu_period.to_string(),
            "cpuQuota": r.cpu_quota.to_string(),
            "cpusetCpus": r.cpuset_cpus,
            "cpusetMems": r.cpuset_mems,
        });
        out.insert("linuxResources".into(), resources);
    }
    Value::Object(out)
}

fn meta_from_json(v: &Value) -> Result<pb::OpMetadata, DefinitionJsonError> {
    let mut m = pb::OpMetadata {
        ignore_cache: boolean(v.get("ignoreCache"))?,
        description: string_map(v.get("description"))?,
        ..pb::OpMetadata::default()
    };
    if let Some(export) = present(v.get("exportCache")) {
        m.export_cache = Some(pb::ExportCache {
            value: boolean(export.get("Value"))?,
        });
    }
    if let Some(caps) = present(v.get("caps")) {
        let caps = caps
            .as_object()
            .ok_or_else(|| bad("caps is not an object"))?;
        for (cap, on) in caps {
            m.caps.insert(cap.clone(), boolean(Some(on))?);
        }
    }
    if let Some(g) = present(v.get("progressGroup")) {
        let (id, name) = (string(g.get("id"))?, string(g.get("name"))?);
        m.progress_group = Some(pb::ProgressGroup {
            id,
            name,
            weak: boolean(g.get("weak"))?,
        });
    }
    if let Some(r) = present(v.get("linuxResources")) {
        m.linux_resources = Some(pb::LinuxResources {
            memory: number(r.get("memory"))?,
            memory_swap: number(r.get("memorySwap"))?,
            cpu_shares: number(r.get("cpuShares"))?,
            cpu_period: number(r.get("cpuPeriod"))?,
            cpu_quota: number(r.get("cpuQuota"))?,
            cpuset_cpus: string(r.get("cpusetCpus"))?,
            cpuset_mems: string(r.get("cpusetMems"))?,
        });
    }
    Ok(m)
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn array(v: Option<&Value>) -> Result<Vec<Value>, DefinitionJsonError> {
    match present(v) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(bad("def is not an array")),
    }
}

fn boolean(v: Option<&Value>) -> Result<bool, DefinitionJsonError> {
    match present(v) {
        None => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| bad(format!("{v} is not a boolean"))),
    }
}

fn string(v: Option<&Value>) -> Result<String, DefinitionJsonError> {
    match present(v) {
        None => Ok(String::new()),
        Some(v) => v
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| bad(format!("{v} is not a string"))),
    }
}

fn string_map(v: Option<&Value>) -> Result<BTreeMap<String, String>, DefinitionJsonError> {
    let Some(v) = present(v) else {
        return Ok(BTreeMap::new());
    };
    let object = v
        .as_object()
        .ok_or_else(|| bad(format!("{v} is not an object")))?;
    object
        .iter()
        .map(|(k, v)| Ok((k.clone(), string(Some(v))?)))
        .collect()
}

/// A 64-bit integer, as protobuf JSON writes it (a string) or as a plain number.
fn number<T: std::str::FromStr + Default>(v: Option<&Value>) -> Result<T, DefinitionJsonError> {
    let text = match present(v) {
        None => return Ok(T::default()),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(bad(format!("{other} is not a number"))),
    };
    text.parse()
        .map_err(|_| bad(format!("{text:?} is not an integer")))
}
