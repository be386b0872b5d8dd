//! nodekit's content-addressed build cache index: keys, records, GC policy, import and export,
//! stored in redb. Pure storage: no gRPC and no containerd in here; the daemon adapts it to the
//! solver and to containerd. (Built out by the cache issue; the crate exists so the workspace
//! shows the architecture from the start.)
