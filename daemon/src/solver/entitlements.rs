//! Entitlements, as buildkitd: a step that needs one (`RUN --security=insecure`,
//! `RUN --network=host`) runs only when the daemon allows it (`--allow-insecure-entitlement`,
//! `insecure-entitlements`) and the client asked for it (`buildctl --allow`). The whole graph is
//! checked before anything runs, so a cached result never reaches a build that may not have it.
//! ExecOp fields nodekitd does not implement are refused here too.

use nodekit_llb::Graph;
use nodekit_proto::pb::{self, op::Op, NetMode, SecurityMode};

use super::SolveError;
pub use crate::config::entitlements::{Entitlement, Entitlements};

/// What a build gets: what its client asked for, each of which the daemon must allow
/// (upstream's wording when it does not).
pub fn grant(requested: &[String], allowed: &Entitlements) -> Result<Entitlements, SolveError> {
    let requested = Entitlements::parse(requested).map_err(SolveError::NotAllowed)?;
    match requested.first_missing_from(allowed) {
        Some(missing) => Err(SolveError::NotAllowed(format!(
            "granting entitlement {missing} is not allowed by build daemon configuration (nodekitd --allow-insecure-entitlement {missing})"
        ))),
        None => Ok(requested),
    }
}

/// How both sides let a build have `entitlement`, for the refusal of one that lacks it.
pub fn how_to_allow(entitlement: Entitlement) -> String {
    format!(
        "the client must ask for it (buildctl --allow {entitlement}) and nodekitd must allow it (--allow-insecure-entitlement {entitlement} or insecure-entitlements in its config)"
    )
}

/// Checks every ExecOp of `graph` against what the build was granted.
pub fn check_graph(graph: &Graph, granted: &Entitlements) -> Result<(), SolveError> {
    for vertex in graph.vertices() {
        if let Some(Op::Exec(exec)) = &vertex.op.op {
            check_exec(exec, granted)?;
        }
    }
    Ok(())
}

fn check_exec(exec: &pb::ExecOp, granted: &Entitlements) -> Result<(), SolveError> {
    let command = exec
        .meta
        .as_ref()
        .map(|m| m.args.join(" "))
        .unwrap_or_default();
    let needs = [
        (exec.security == SecurityMode::Insecure as i32).then_some(Entitlement::SecurityInsecure),
        (exec.network == NetMode::Host as i32).then_some(Entitlement::NetworkHost),
    ];
    if let Some(missing) = needs.into_iter().flatten().find(|e| !granted.contains(*e)) {
        return Err(SolveError::NotAllowed(format!(
            "{missing} is not allowed: \"{command}\" needs it; {}",
            how_to_allow(missing)
        )));
    }
    if !exec.cdi_devices.is_empty() {
        return Err(SolveError::Unsupported(format!(
            "\"{command}\" asks for CDI devices (RUN --device), which nodekitd does not have"
        )));
    }
    if exec
        .meta
        .as_ref()
        .is_some_and(|m| !m.cgroup_parent.is_empty())
    {
        return Err(SolveError::Unsupported(format!(
            "\"{command}\" asks for a cgroup parent, which nodekitd does not support yet"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_build_gets_only_what_it_asks_and_the_daemon_allows() {
        let allowed = Entitlements::parse(&names(&["security.insecure"])).unwrap();
        let granted = grant(&names(&["security.insecure"]), &allowed).unwrap();
        assert!(granted.contains(Entitlement::SecurityInsecure));
        assert!(grant(&[], &allowed).unwrap() == Entitlements::default());
        let error = grant(&names(&["network.host"]), &allowed)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("granting entitlement network.host is not allowed"),
            "{error}"
        );
        assert!(Entitlements::parse(&names(&["device=gpu"])).is_err());
        assert!(Entitlements::parse(&names(&["net.host"])).is_err());
    }

    #[test]
    fn an_insecure_or_host_network_step_needs_its_entitlement() {
        let exec = |security: SecurityMode, network: NetMode| pb::ExecOp {
            meta: Some(pb::Meta {
                args: names(&["sh", "-c", "true"]),
                ..Default::default()
            }),
            security: security as i32,
            network: network as i32,
            ..Default::default()
        };
        let none = Entitlements::default();
        assert!(check_exec(&exec(SecurityMode::Sandbox, NetMode::Unset), &none).is_ok());
        assert!(check_exec(&exec(SecurityMode::Sandbox, NetMode::None), &none).is_ok());
        let error = check_exec(&exec(SecurityMode::Insecure, NetMode::Unset), &none)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("security.insecure is not allowed"),
            "{error}"
        );
        let error = check_exec(&exec(SecurityMode::Sandbox, NetMode::Host), &none)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("network.host is not allowed"), "{error}");
        let both = Entitlements::parse(&names(&["security.insecure", "network.host"])).unwrap();
        assert!(check_exec(&exec(SecurityMode::Insecure, NetMode::Host), &both).is_ok());
    }
}
