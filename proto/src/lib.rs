//! Protobuf messages and gRPC clients/servers for the BuildKit wire protocol.
//!
//! Everything here is generated at build time from the `.proto` files under
//! `proto/proto/`; module paths mirror the protobuf package names.

/// Largest gRPC message in either direction, as buildkitd and buildctl allow: the one limit
/// the daemon's services, its session calls back to the client, and the client share.
pub const MAX_MESSAGE: usize = 16 << 20;

/// Packages under `moby.*`.
pub mod moby {
    /// Packages under `moby.buildkit.*`.
    pub mod buildkit {
        /// `moby.buildkit.v1`: the Control service (Solve, Status, Session, ...).
        pub mod v1 {
            tonic::include_proto!("moby.buildkit.v1");

            /// `moby.buildkit.v1.types`: WorkerRecord, GCPolicy, BuildkitVersion.
            pub mod types {
                tonic::include_proto!("moby.buildkit.v1.types");
            }

            /// `moby.buildkit.v1.frontend`: the LLBBridge gateway service.
            pub mod frontend {
                tonic::include_proto!("moby.buildkit.v1.frontend");
            }

            /// `moby.buildkit.v1.apicaps`: capability records (APICap).
            pub mod apicaps {
                tonic::include_proto!("moby.buildkit.v1.apicaps");
            }

            /// `moby.buildkit.v1.sourcepolicy`: source policy rules.
            pub mod sourcepolicy {
                tonic::include_proto!("moby.buildkit.v1.sourcepolicy");
            }
        }

        /// Packages under `moby.buildkit.secrets`.
        pub mod secrets {
            /// `moby.buildkit.secrets.v1`: the session Secrets service.
            pub mod v1 {
                tonic::include_proto!("moby.buildkit.secrets.v1");
            }
        }
    }

    /// Packages under `moby.sshforward`.
    pub mod sshforward {
        /// `moby.sshforward.v1`: the session's SSH agent forwarding.
        pub mod v1 {
            tonic::include_proto!("moby.sshforward.v1");
        }
    }

    /// Packages under `moby.filesync`.
    pub mod filesync {
        /// `moby.filesync.v1`: session FileSync, FileSend and Auth services.
        pub mod v1 {
            tonic::include_proto!("moby.filesync.v1");
        }
    }
}

/// Packages under `containerd.*`: the containerd services a BuildKit session carries.
pub mod containerd {
    /// Packages under `containerd.services`.
    pub mod services {
        /// Packages under `containerd.services.content`.
        pub mod content {
            /// `containerd.services.content.v1`: the Content service, which a session's client
            /// serves over its local cache and OCI layout directories.
            pub mod v1 {
                tonic::include_proto!("containerd.services.content.v1");
            }
        }
    }
}

/// Packages under `fsutil.*`.
pub mod fsutil {
    /// `fsutil.types`: DiffCopy Packet and Stat.
    pub mod types {
        tonic::include_proto!("fsutil.types");
    }
}

/// `pb`: LLB, the low-level build graph (Op, Definition, ...).
pub mod pb {
    tonic::include_proto!("pb");
}

/// Packages under `grpc.*`.
pub mod grpc {
    /// Packages under `grpc.health`.
    pub mod health {
        /// `grpc.health.v1`: the standard gRPC Health service.
        pub mod v1 {
            tonic::include_proto!("grpc.health.v1");
        }
    }
}

/// Packages under `google.*`.
pub mod google {
    /// `google.rpc`: the Status error model.
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

pub mod session_pipe;

/// nodekit's own services (not BuildKit's).
pub mod nodekit {
    /// Packages under `nodekit.cache`.
    pub mod cache {
        /// `nodekit.cache.v1`: cache bundles (export and import of a node's cache).
        pub mod v1 {
            tonic::include_proto!("nodekit.cache.v1");
        }
    }
}

/// Packages under `perftools.*`.
pub mod perftools {
    /// `perftools.profiles`: the pprof profile format (nodekitd's CPU profiles).
    pub mod profiles {
        tonic::include_proto!("perftools.profiles");
    }
}
