//! The image config a Dockerfile stage builds up. Kept as JSON so that what the base image
//! carries (Docker's Healthcheck, OnBuild, Shell, unknown fields) passes through untouched.

mod env_list;

use serde_json::{json, Map, Value};

use self::env_list::EnvList;
use crate::oci::Platform;
use crate::solver::SolveError;

/// The PATH a stage gets when its base sets none (BuildKit's default).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Clone, Debug, PartialEq)]
pub struct StageImage {
    /// The config but its history and its Env list.
    json: Value,
    /// The history, kept out of the JSON in a persistent list: a stage FROM another copies its
    /// image, and copies of the whole history made a chain of N stages cost N squared. None:
    /// the config has no history list (whatever it has instead stays in `json`).
    history: Option<imbl::Vector<Value>>,
    /// The config's Env, kept out of the JSON for the same reason. None: the config has no
    /// Env list (whatever it has instead stays in `json`).
    env: Option<EnvList>,
}

impl StageImage {
    /// The config of `FROM scratch` for `platform`.
    pub fn scratch(platform: &Platform) -> StageImage {
        let mut json = json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {"Env": [DEFAULT_PATH], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        });
        if let Some(variant) = &platform.variant {
            json["variant"] = json!(variant);
        }
        StageImage::new(json)
    }

    /// A base image's config (the blob as stored).
    pub fn from_base(bytes: &[u8]) -> Result<StageImage, SolveError> {
        let mut json: Value = serde_json::from_slice(bytes)
            .map_err(|e| SolveError::Other(format!("the base image's config is not JSON: {e}")))?;
        if !json.is_object() {
            let error = "the base image's config is not a JSON object";
            return Err(SolveError::Other(error.to_string()));
        }
        if !json.get("config").is_some_and(Value::is_object) {
            json["config"] = json!({});
        }
        // The new image's time is its newest history entry's, given at export.
        if let Some(fields) = json.as_object_mut() {
            fields.remove("created");
        }
        let image = StageImage::new(json);
        Ok(if image.env().iter().any(|e| e.starts_with("PATH=")) {
            image
        } else {
            image.with_env_entry(DEFAULT_PATH)
        })
    }

    /// `json`, an object.
    fn new(mut json: Value) -> StageImage {
        let history = match json
            .as_object_mut()
            .and_then(|fields| fields.remove("history"))
        {
            Some(Value::Array(history)) => Some(history.into_iter().collect()),
            Some(other) => {
                json["history"] = other;
                None
            }
            None => None,
        };
        let mut image = StageImage {
            json,
            history,
            env: None,
        };
        if let Some(Value::Array(env)) = image.get("Env") {
            let env = env.iter().cloned().collect();
            image.config().remove("Env");
            image.env = Some(env);
        }
        image
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut json = self.json.clone();
        if let Some(history) = &self.history {
            json["history"] = Value::Array(history.iter().cloned().collect());
        }
        if let (Some(env), Some(config)) = (&self.env, json["config"].as_object_mut()) {
            config.insert("Env".to_string(), env.to_value());
        }
        serde_json::to_vec(&json).unwrap_or_default()
    }

    fn config(&mut self) -> &mut Map<String, Value> {
        if !self.json["config"].is_object() {
            self.json["config"] = json!({});
        }
        match self.json["config"].as_object_mut() {
            Some(config) => config,
            None => unreachable!("config was just made an object"),
        }
    }

    /// A runtime config field (`Cmd`, `User`, ...; the Env list is read with `env`).
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.json.get("config")?.get(field).filter(|v| !v.is_null())
    }

    /// Sets a runtime config field; `Null` removes it.
    pub fn set(&mut self, field: &str, value: Value) {
        if field == "Env" {
            self.env = None;
        }
        match value {
            Value::Null => {
                self.config().remove(field);
            }
            Value::Array(env) if field == "Env" => {
                self.config().remove(field);
                self.env = Some(env.into_iter().collect());
            }
            value => {
                self.config().insert(field.to_string(), value);
            }
        }
    }

    pub fn string(&self, field: &str) -> String {
        self.get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    pub fn strings(&self, field: &str) -> Vec<String> {
        let values = self.get(field).and_then(Value::as_array);
        values
            .map(|v| {
                v.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn env(&self) -> Vec<String> {
        self.env.as_ref().map(EnvList::strings).unwrap_or_default()
    }

    /// Sets `key=value` in Env, replacing an earlier value of `key` in its place.
    pub fn set_env(&mut self, key: &str, value: &str) {
        if self.env.is_none() {
            // Whatever the config had instead of a list is replaced, as a list would be.
            self.config().remove("Env");
        }
        self.env
            .get_or_insert_with(EnvList::default)
            .set(key, value);
    }

    fn with_env_entry(mut self, entry: &str) -> StageImage {
        let mut env = self.env();
        env.insert(0, entry.to_string());
        self.set("Env", json!(env));
        self
    }

    /// Adds `key` to a map-valued field (`Labels`, `ExposedPorts`, `Volumes`).
    pub fn insert_into(&mut self, field: &str, key: &str, value: Value) {
        let config = self.config();
        let entry = config.entry(field.to_string()).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        if let Some(map) = entry.as_object_mut() {
            map.insert(key.to_string(), value);
        }
    }

    /// Sets a top-level field (`author`; not `history`, which has add_history).
    pub fn set_top(&mut self, field: &str, value: Value) {
        self.json[field] = value;
    }

    /// Appends a history entry, as upstream writes them; its time is the exporter's to give
    /// (its layer's creation time, so a cached rebuild gives the same image).
    pub fn add_history(&mut self, created_by: &str, empty_layer: bool) {
        let mut entry = json!({
            "created_by": created_by,
            "comment": "buildkit.dockerfile.v0",
        });
        if empty_layer {
            entry["empty_layer"] = json!(true);
        }
        match &mut self.history {
            Some(history) => history.push_back(entry),
            None => {
                if let Some(fields) = self.json.as_object_mut() {
                    fields.remove("history");
                }
                self.history = Some(imbl::Vector::unit(entry));
            }
        }
    }

    /// The platform the config names (the given one when it names none).
    pub fn set_platform(&mut self, platform: &Platform) {
        self.json["architecture"] = json!(platform.architecture);
        self.json["os"] = json!(platform.os);
        match &platform.variant {
            Some(variant) => self.json["variant"] = json!(variant),
            None => {
                if let Some(object) = self.json.as_object_mut() {
                    object.remove("variant");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_replaces_and_base_keeps_unknown_fields() {
        let base = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Healthcheck":{"Test":["NONE"]}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let mut image = StageImage::from_base(base).unwrap();
        assert_eq!(
            image.env(),
            vec![DEFAULT_PATH.to_string(), "A=1".to_string()]
        );
        image.set_env("A", "2");
        assert_eq!(image.env().last().unwrap(), "A=2");
        assert_eq!(image.env().len(), 2);
        assert_eq!(image.get("Healthcheck").unwrap()["Test"][0], "NONE");
        image.insert_into("ExposedPorts", "80/tcp", json!({}));
        image.add_history("ENV A=2", true);
        let bytes = image.to_bytes();
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back["config"]["ExposedPorts"]["80/tcp"], json!({}));
        assert_eq!(back["history"][0]["empty_layer"], json!(true));
    }

    #[test]
    fn env_sets_the_first_entry_of_a_key_in_its_place() {
        let base = br#"{"config":{"Env":["PATH=/bin",7,"A=1","B","A=2"]}}"#;
        let mut image = StageImage::from_base(base).unwrap();
        image.set_env("A", "3");
        image.set_env("B", "4");
        image.set_env("C", "5");
        let json: Value = serde_json::from_slice(&image.to_bytes()).unwrap();
        let env = &json["config"]["Env"];
        assert_eq!(env, &json!(["PATH=/bin", 7, "A=3", "B=4", "A=2", "C=5"]));
        image.set("Env", json!(["C=1"]));
        image.set_env("C", "2");
        assert_eq!(image.env(), ["C=2"]);
    }

    #[test]
    fn a_copied_image_s_history_is_its_own() {
        let base = br#"{"config":{},"history":[{"created_by":"base"}]}"#;
        let mut first = StageImage::from_base(base).unwrap();
        first.add_history("ENV A=1", true);
        let mut second = first.clone();
        second.add_history("RUN x", false);
        let history = |image: &StageImage| {
            let json: Value = serde_json::from_slice(&image.to_bytes()).unwrap();
            json["history"].as_array().unwrap().len()
        };
        assert_eq!((history(&first), history(&second)), (2, 3));
        assert_ne!(first, second);
        let no_history = StageImage::from_base(br#"{"config":{},"history":null}"#).unwrap();
        let json: Value = serde_json::from_slice(&no_history.to_bytes()).unwrap();
        assert_eq!(json["history"], Value::Null);
        assert!(StageImage::from_base(b"[1]").is_err());
    }
}
