//! The capabilities `LLBBridge.Ping` advertises. A client checks every cap its definition uses
//! against the LLB list before sending it, so the lists name exactly what nodekitd implements;
//! anything else is refused by the client with upstream's own "unsupported cap" message.

/// Frontend API capabilities (upstream `frontend/gateway/pb/caps.go`).
pub const FRONTEND_API: &[&str] = &[
    "solve.base",
    "solve.inlinereturn",
    "resolveimage",
    "resolveimage.resolvemode",
    "readfile",
    "readdir",
    "statfile",
    "return",
    "returnmap",
    "proto.refarray",
    "reference.output",
    "frontend.inputs",
    "frontend.caps",
    "gateway.evaluate",
    "gateway.solve.evaluate",
    "gateway.warnings",
    "importcaches",
    "gateway.exec",
    "gateway.exec.extrahosts",
    "gateway.exec.signals",
];

/// LLB capabilities (upstream `solver/pb/caps.go`).
pub const LLB: &[&str] = &[
    "source.image",
    "source.image.resolvemode",
    "source.local",
    "source.local.unique",
    "source.local.sessionid",
    "source.local.includepatterns",
    "source.local.followpaths",
    "source.local.excludepatterns",
    "source.local.sharedkeyhint",
    "source.ocilayout",
    "source.git",
    "source.git.keepgitdir",
    "source.git.fullurl",
    "source.git.httpauth",
    "source.git.knownsshhosts",
    "source.git.mountsshsock",
    "source.git.subdir",
    "source.git.checksum",
    "source.git.skipsubmodules",
    "exec.meta.base",
    "exec.meta.network",
    "exec.meta.proxyenv",
    "exec.meta.setsdefaultpath",
    "exec.meta.removemountstubs.recursive",
    "exec.mount.bind",
    "exec.mount.bind.readwrite-nooutput",
    "exec.mount.cache",
    "exec.mount.cache.sharing",
    "exec.mount.selector",
    "exec.mount.tmpfs",
    "exec.mount.tmpfs.size",
    "exec.mount.secret",
    "exec.mount.ssh",
    "exec.secretenv",
    "exec.validexitcode",
    "file.base",
    "file.rm.wildcard",
    "file.rm.nofollowsymlink",
    "file.copy.includeexcludepatterns",
    "file.copy.alwaysreplaceexistingdestpaths",
    "file.copy.modestring",
    "file.symlink.create",
    "constraints",
    "platform",
    "meta.ignorecache",
    "meta.description",
    "meta.exportcache",
    "mergeop",
    "diffop",
];

/// `caps` as wire records, all enabled.
pub fn records(caps: &[&str]) -> Vec<nodekit_proto::moby::buildkit::v1::apicaps::ApiCap> {
    caps.iter()
        .map(|id| nodekit_proto::moby::buildkit::v1::apicaps::ApiCap {
            id: id.to_string(),
            enabled: true,
            ..Default::default()
        })
        .collect()
}
