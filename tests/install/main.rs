//! The install files as their tools and a node read them: the Kubernetes manifests rendered by
//! kustomize and validated for recent Kubernetes versions, their names agreeing with each other,
//! and the DaemonSet's pod run as a kubelet would run it (the image nodekit built, its mounts,
//! its TLS) on the test containerd.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod kube;
mod manifests;
mod pod;
