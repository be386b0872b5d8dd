//! install/kubernetes as Kubernetes reads it: kustomize's output passes kubernetes-validate
//! --strict for the versions of the last two years, and the names, ports, paths and timings of
//! the resources and of the nodekitd.toml they carry agree with each other.

use serde_json::Value;

use crate::kube::{
    config_toml, container, documents, find, make_certs, render, strings, validate, volume,
};

/// Kubernetes releases of the last two years (1.32 came out in December 2024).
const KUBERNETES_VERSIONS: [&str; 6] = ["1.32.0", "1.33.0", "1.34.0", "1.35.0", "1.36.0", "1.37.0"];

const NAMESPACE: &str = "nodekit";

fn write_temp(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

#[test]
fn the_base_and_the_plain_tcp_overlay_pass_strict_validation_for_recent_kubernetes() {
    for dir in ["base", "overlays/plain-tcp"] {
        let rendered = write_temp(&render(dir));
        for version in KUBERNETES_VERSIONS {
            let (valid, report) = validate(rendered.path(), version);
            assert!(valid, "{dir} for Kubernetes {version}: {report}");
        }
    }
}

#[test]
fn the_validation_refuses_a_field_kubernetes_does_not_know() {
    let mut docs = documents(&render("base"));
    let daemonset = docs.iter_mut().find(|d| d["kind"] == "DaemonSet").unwrap();
    daemonset["spec"]["template"]["spec"]["containers"][0]["privilegd"] = Value::Bool(true);
    let broken = write_temp(&serde_json::to_string(&daemonset).unwrap());
    let (valid, report) = validate(broken.path(), KUBERNETES_VERSIONS[5]);
    assert!(!valid && report.contains("privilegd"), "{report}");
}

#[test]
fn every_resource_is_in_one_namespace_and_the_selectors_and_ports_match() {
    let docs = documents(&render("base"));
    for doc in docs.iter().filter(|d| d["kind"] != "Namespace") {
        assert_eq!(doc["metadata"]["namespace"], NAMESPACE, "{}", doc["kind"]);
    }
    assert_eq!(
        find(&docs, "Namespace", None)["metadata"]["name"],
        NAMESPACE
    );
    let daemonset = find(&docs, "DaemonSet", Some("nodekitd"));
    let pod_labels = &daemonset["spec"]["template"]["metadata"]["labels"];
    assert_selects(&daemonset["spec"]["selector"]["matchLabels"], pod_labels);
    let service = find(&docs, "Service", Some("nodekitd"));
    assert_eq!(service["spec"]["internalTrafficPolicy"], "Local");
    assert_selects(&service["spec"]["selector"], pod_labels);
    let ports = container(daemonset)["ports"].as_array().unwrap();
    for port in service["spec"]["ports"].as_array().unwrap() {
        assert!(
            ports.iter().any(|p| p["name"] == port["targetPort"]),
            "the Service's {} targets a container port",
            port["name"]
        );
    }
    let monitor_text = std::fs::read_to_string(
        crate::kube::manifests_dir().join("monitoring/servicemonitor.yaml"),
    )
    .unwrap();
    let monitor = &documents(&monitor_text)[0];
    assert_eq!(monitor["metadata"]["namespace"], NAMESPACE);
    assert_selects(
        &monitor["spec"]["selector"]["matchLabels"],
        &service["metadata"]["labels"],
    );
    let scraped = &monitor["spec"]["endpoints"][0];
    assert!(service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == scraped["port"]));
    assert_eq!(scraped["path"], "/metrics");
}

fn assert_selects(selector: &Value, labels: &Value) {
    let selector = selector.as_object().unwrap();
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(&labels[key], value, "label {key}");
    }
}

#[test]
fn the_config_map_secret_and_flags_name_what_the_pod_mounts() {
    let docs = documents(&render("base"));
    let daemonset = find(&docs, "DaemonSet", Some("nodekitd"));
    let config_map = find(&docs, "ConfigMap", None);
    assert_eq!(
        volume(daemonset, "config")["configMap"]["name"],
        config_map["metadata"]["name"],
        "the pod mounts the generated ConfigMap"
    );
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let secret_text = std::fs::read_to_string(certs.path().join("secret.yaml")).unwrap();
    let secret = &documents(&secret_text)[0];
    assert_eq!(
        volume(daemonset, "tls")["secret"]["secretName"],
        secret["metadata"]["name"]
    );
    assert_eq!(secret["metadata"]["namespace"], NAMESPACE);
    let tls_dir = mount_path(daemonset, "tls");
    for flag in ["--tlscert=", "--tlskey=", "--tlscacert="] {
        let file = flag_value(daemonset, flag);
        let key = file
            .strip_prefix(&format!("{tls_dir}/"))
            .unwrap_or_else(|| panic!("{flag} is in the Secret's mount: {file}"));
        assert!(secret["data"][key].is_string(), "the Secret holds {key}");
    }
    let config_file = flag_value(daemonset, "--config=");
    assert_eq!(config_file, mount_path(daemonset, "config"));
}

fn mount_path(daemonset: &Value, volume: &str) -> String {
    container(daemonset)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume)
        .and_then(|m| m["mountPath"].as_str())
        .unwrap_or_else(|| panic!("{volume} is mounted"))
        .to_string()
}

fn flag_value(daemonset: &Value, flag: &str) -> String {
    strings(&container(daemonset)["args"])
        .into_iter()
        .find_map(|a| a.strip_prefix(flag).map(String::from))
        .unwrap_or_else(|| panic!("the container is given {flag}"))
}

#[test]
fn nodekitd_reads_the_config_map_without_a_warning_and_it_matches_the_pod() {
    let docs = documents(&render("base"));
    let daemonset = find(&docs, "DaemonSet", Some("nodekitd"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config_toml(&docs)).unwrap();
    let cli = <nodekitd::config::Cli as clap::Parser>::try_parse_from([
        "nodekitd",
        "--config",
        file.path().to_str().unwrap(),
    ])
    .unwrap();
    let config = nodekitd::config::Config::load(cli).unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    let container = container(daemonset);
    let port_of = |name: &str| {
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap()
    };
    let debug_addr = config.debug_addr.expect("the debug listener is on");
    assert_eq!(u64::from(debug_addr.port()), port_of("debug"));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], "debug");
    }
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let tcp = config
        .addrs
        .iter()
        .find_map(|a| match a {
            nodekitd::config::ListenAddr::Tcp(addr) => Some(*addr),
            _ => None,
        })
        .expect("nodekitd listens on tcp");
    assert_eq!(u64::from(tcp.port()), port_of("grpc"));

    let grace = daemonset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(
        grace > config.shutdown_grace.as_secs(),
        "the kubelet waits longer ({grace} s) than nodekitd lets builds finish ({:?})",
        config.shutdown_grace
    );
    let root = mount_path(daemonset, "nodekit-root");
    assert!(config.root.starts_with(&root));
    assert!(config.worker.mount_source_root.starts_with(&root));
}

#[test]
fn host_paths_are_mounted_at_their_own_paths_and_mounts_made_there_reach_the_host() {
    let docs = documents(&render("base"));
    let daemonset = find(&docs, "DaemonSet", Some("nodekitd"));
    assert_eq!(container(daemonset)["securityContext"]["privileged"], true);
    let mounts = container(daemonset)["volumeMounts"].as_array().unwrap();
    let mut host_paths = 0;
    for mount in mounts {
        let name = mount["name"].as_str().unwrap();
        if let Some(path) = volume(daemonset, name)["hostPath"]["path"].as_str() {
            assert_eq!(mount["mountPath"], path, "{name} at its host path");
            host_paths += 1;
        }
    }
    assert!(
        host_paths >= 4,
        "containerd's socket and root, nodekit's root and socket"
    );
    let root = mounts.iter().find(|m| m["name"] == "nodekit-root").unwrap();
    assert_eq!(root["mountPropagation"], "Bidirectional");
}

#[test]
fn the_plain_tcp_overlay_drops_tls_and_nothing_else() {
    let base = documents(&render("base"));
    let plain = documents(&render("overlays/plain-tcp"));
    let base_set = find(&base, "DaemonSet", None);
    let plain_set = find(&plain, "DaemonSet", None);
    let plain_args = strings(&container(plain_set)["args"]);
    assert!(
        plain_args.iter().all(|a| !a.starts_with("--tls")),
        "{plain_args:?}"
    );
    let kept: Vec<String> = strings(&container(base_set)["args"])
        .into_iter()
        .filter(|a| !a.starts_with("--tls"))
        .collect();
    assert_eq!(plain_args, kept);
    let volumes = |set: &Value| -> Vec<String> {
        set["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mut expected = volumes(base_set);
    expected.retain(|v| v != "tls");
    assert_eq!(volumes(plain_set), expected);
    assert_eq!(base.len(), plain.len());
}
