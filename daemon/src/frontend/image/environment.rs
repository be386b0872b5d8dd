//! What a frontend image's process gets, as buildkitd gives it: the image's entrypoint (else
//! `/run`), working directory and env, plus its options (`BUILDKIT_FRONTEND_OPT_<n>`), the
//! session, the workers and the product; and the checks made before it runs.

use std::collections::BTreeMap;

use nodekit_proto::pb;

use crate::gateway::GatewayBuild;
use crate::solver::{Ref, SolveError};
use crate::worker::exec::ProcessSpec;

/// The image label listing the frontend capabilities the image has.
const CAPS_LABEL: &str = "moby.buildkit.frontend.caps";
/// The image label asking for no network.
const NETWORK_NONE_LABEL: &str = "moby.buildkit.frontend.network.none";
/// The option listing the capabilities a build needs of its frontend.
const CAPS_OPTION: &str = "frontend.caps";
/// The capability a frontend needs to be handed inputs.
const INPUTS_CAP: &str = "moby.buildkit.frontend.inputs";
/// What buildkitd calls itself to frontends (`apicaps.ExportedProduct`).
const PRODUCT: &str = "buildkit";

/// A resolved frontend image.
pub struct FrontendImage {
    /// Its image-store name (`docker.io/example/frontend:1`).
    pub name: String,
    pub config: Option<oci_spec::image::Config>,
    /// Its filesystem (None: empty).
    pub root: Option<Ref>,
    /// Its image source as LLB (the frontend's `frontend.bin`).
    pub definition: pb::Definition,
}

impl FrontendImage {
    fn label(&self, key: &str) -> Option<&str> {
        let labels = self.config.as_ref()?.labels().as_ref()?;
        labels.get(key).map(String::as_str)
    }
}

/// Refuses by name the options that would have nodekitd run another frontend than the image.
pub fn refuse_unsupported(
    source: &str,
    options: &BTreeMap<String, String>,
) -> Result<(), SolveError> {
    if options.contains_key("gateway-devel") {
        return Err(SolveError::Unsupported(
            "frontend option gateway-devel (the source solved as a frontend) is not supported by nodekitd".into(),
        ));
    }
    if options.contains_key(&format!("context:{source}")) {
        return Err(SolveError::Unsupported(format!(
            "frontend option context:{source}: replacing a frontend image by a named context is not supported by nodekitd"
        )));
    }
    Ok(())
}

/// The capabilities the build needs (`frontend.caps`, and inputs when it has them) must be
/// among those the image's label lists; upstream's error and code (Unimplemented) otherwise.
pub fn check_caps(
    source: &str,
    image: &FrontendImage,
    options: &BTreeMap<String, String>,
    inputs: &BTreeMap<String, pb::Definition>,
) -> Result<(), SolveError> {
    let has: Vec<&str> = caps(image.label(CAPS_LABEL).unwrap_or_default()).collect();
    let mut needed: Vec<&str> = caps(options.get(CAPS_OPTION).map_or("", String::as_str)).collect();
    if !inputs.is_empty() {
        needed.push(INPUTS_CAP);
    }
    match needed.into_iter().find(|cap| !has.contains(cap)) {
        Some(missing) => Err(SolveError::Unsupported(format!(
            "unsupported frontend capability {missing} (frontend image {source} does not list it in its {CAPS_LABEL} label)"
        ))),
        None => Ok(()),
    }
}

/// A comma-separated list of capabilities.
fn caps(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|c| !c.is_empty())
}

/// The frontend's network: none when the image's label says so (Go's `ParseBool` truths).
pub fn network(image: &FrontendImage) -> pb::NetMode {
    match image.label(NETWORK_NONE_LABEL) {
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => pb::NetMode::None,
        _ => pb::NetMode::Unset,
    }
}

/// The frontend's process: the image's entrypoint, working directory and env, and the
/// variables a BuildKit frontend reads.
pub fn process(
    image: &FrontendImage,
    options: &BTreeMap<String, String>,
    build: &GatewayBuild,
) -> ProcessSpec {
    let config = image.config.as_ref();
    let args = config
        .and_then(|c| c.entrypoint().clone())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| vec!["/run".to_string()]);
    let cwd = config
        .and_then(|c| c.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_string());
    let mut env = config.and_then(|c| c.env().clone()).unwrap_or_default();
    env.extend(frontend_env(
        options,
        &build.ctx.session_id,
        &build.host.workers(),
    ));
    ProcessSpec {
        args,
        env,
        cwd,
        ..Default::default()
    }
}

fn frontend_env(
    options: &BTreeMap<String, String>,
    session_id: &str,
    workers: &str,
) -> Vec<String> {
    let mut env: Vec<String> = options
        .iter()
        .enumerate()
        .map(|(index, (key, value))| format!("BUILDKIT_FRONTEND_OPT_{index}={key}={value}"))
        .collect();
    env.push(format!("BUILDKIT_SESSION_ID={session_id}"));
    env.push(format!("BUILDKIT_WORKERS={workers}"));
    env.push(format!("BUILDKIT_EXPORTEDPRODUCT={PRODUCT}"));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(labels: &[(&str, &str)]) -> FrontendImage {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut config = oci_spec::image::Config::default();
        config.set_labels(Some(labels));
        FrontendImage {
            name: "docker.io/example/frontend:1".into(),
            config: Some(config),
            root: None,
            definition: pb::Definition::default(),
        }
    }

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn needed_capabilities_must_be_listed_by_the_image() {
        let frontend = image(&[(CAPS_LABEL, "moby.buildkit.frontend.inputs, a.b")]);
        let none: BTreeMap<String, pb::Definition> = BTreeMap::new();
        let no_options = BTreeMap::new();
        let inputs = BTreeMap::from([("x".to_string(), pb::Definition::default())]);
        let ok = |opts: &[(&str, &str)], inputs| check_caps("f", &frontend, &options(opts), inputs);
        assert!(ok(&[(CAPS_OPTION, "a.b")], &inputs).is_ok());
        let missing = ok(&[(CAPS_OPTION, "a.b,c.d")], &none).unwrap_err();
        assert!(missing
            .to_string()
            .starts_with("unsupported frontend capability c.d"));
        let bare = image(&[]);
        let error = check_caps("f", &bare, &no_options, &inputs).unwrap_err();
        assert!(error.to_string().contains(INPUTS_CAP), "{error}");
        assert!(check_caps("f", &bare, &no_options, &none).is_ok());
    }

    #[test]
    fn the_network_label_takes_go_truths() {
        for value in ["1", "true", "TRUE", "t"] {
            let frontend = image(&[(NETWORK_NONE_LABEL, value)]);
            assert_eq!(network(&frontend), pb::NetMode::None, "{value}");
        }
        for value in ["0", "false", "yes", ""] {
            let frontend = image(&[(NETWORK_NONE_LABEL, value)]);
            assert_eq!(network(&frontend), pb::NetMode::Unset, "{value}");
        }
    }

    #[test]
    fn options_session_workers_and_product_are_in_the_env() {
        let env = frontend_env(&options(&[("a", "1"), ("b", "x=y")]), "sess", "[]");
        assert_eq!(
            env,
            [
                "BUILDKIT_FRONTEND_OPT_0=a=1",
                "BUILDKIT_FRONTEND_OPT_1=b=x=y",
                "BUILDKIT_SESSION_ID=sess",
                "BUILDKIT_WORKERS=[]",
                "BUILDKIT_EXPORTEDPRODUCT=buildkit",
            ]
        );
    }

    #[test]
    fn gateway_devel_and_a_context_replacing_the_image_are_refused() {
        let error = refuse_unsupported("f:1", &options(&[("gateway-devel", "")])).unwrap_err();
        assert!(error.to_string().contains("gateway-devel"));
        let error = refuse_unsupported("f:1", &options(&[("context:f:1", "x")])).unwrap_err();
        assert!(error.to_string().contains("context:f:1"));
        assert!(refuse_unsupported("f:1", &options(&[("context:other", "x")])).is_ok());
    }
}
