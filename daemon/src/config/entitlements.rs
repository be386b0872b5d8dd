//! Entitlements, as buildkitd names them: what nodekitd allows (`--allow-insecure-entitlement`,
//! `insecure-entitlements`) and what a build asked for (`buildctl --allow`). The solver checks
//! a build's graph against them (`solver::entitlements`).

use std::collections::BTreeSet;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entitlement {
    NetworkHost,
    SecurityInsecure,
}

impl Entitlement {
    pub fn parse(name: &str) -> Result<Entitlement, String> {
        match name {
            "network.host" => Ok(Entitlement::NetworkHost),
            "security.insecure" => Ok(Entitlement::SecurityInsecure),
            _ if name == "device" || name.starts_with("device=") => {
                Err(format!("entitlement {name:?}: nodekitd has no CDI devices"))
            }
            _ => Err(format!(
                "unknown entitlement {name:?} (network.host or security.insecure)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Entitlement::NetworkHost => "network.host",
            Entitlement::SecurityInsecure => "security.insecure",
        }
    }
}

impl fmt::Display for Entitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of entitlements: what the daemon allows, or what a build was granted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entitlements(BTreeSet<Entitlement>);

impl Entitlements {
    pub fn parse(names: &[String]) -> Result<Entitlements, String> {
        names
            .iter()
            .map(|n| Entitlement::parse(n))
            .collect::<Result<_, _>>()
            .map(Entitlements)
    }

    pub fn contains(&self, entitlement: Entitlement) -> bool {
        self.0.contains(&entitlement)
    }

    /// The first of these that `allowed` lacks.
    pub fn first_missing_from(&self, allowed: &Entitlements) -> Option<Entitlement> {
        self.0.iter().copied().find(|e| !allowed.contains(*e))
    }
}
