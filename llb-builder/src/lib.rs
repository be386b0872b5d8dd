//! Building LLB definitions in Rust, with the op bytes BuildKit's Go client (`client/llb`)
//! writes for the same graph: same ops, same order, same digests, same metadata.
//!
//! A [`State`] is an immutable handle on one output of the graph plus the settings later ops
//! inherit (env, working directory, user, network, platform). Ops never run here; [`marshal`]
//! serialises the graph a state depends on into a `pb::Definition` for `Control.Solve`.
//!
//! ```ignore
//! let src = local("context");
//! let out = image("busybox")
//!     .dir("/app")
//!     .run(["/bin/sh", "-c", "cat /app/src/hello > /out"])
//!     .mount("/app/src", Mount::bind(&src).readonly())
//!     .custom_name("show hello")
//!     .root()
//!     .file(Mkdir::new("/data", 0o755).parents(true));
//! let def = marshal(&out)?;
//! ```
//!
//! Differences from the Go client, all deliberate: image config resolution is eager
//! ([`Image::resolve`]) rather than lazy; local sources get a `local.unique` attribute only when
//! a unique id is given ([`Local::unique_id`], [`MarshalOptions::local_unique_id`]), where Go
//! makes up a random one; and problems Go ignores (a command line that doesn't split) are
//! errors.

mod actions;
mod copy;
mod def_json;
mod definition;
mod environment;
mod error;
mod exec;
mod exec_lower;
mod file;
mod file_op;
mod file_proto;
mod git;
mod http;
mod image_config;
mod json;
mod local;
mod marshal;
mod merge;
mod mount;
mod node;
mod options;
mod platform;
mod reference;
mod run;
mod shlex;
mod source;
mod sourcemap;
mod state;
mod state_get;

pub use copy::Copy;
pub use def_json::{definition_from_json, definition_to_json, DefinitionJsonError};
pub use definition::from_definition;
pub use environment::{Environment, Ordered};
pub use error::BuildError;
pub use exec::ExecState;
pub use file::{
    Action, BoundActions, Chown, CopySource, FileAction, Mkdir, Mkfile, Rm, Symlink, UserRef,
};
pub use git::{is_scp_style, is_ssh_transport, Git};
pub use http::Http;
pub use image_config::{
    ContainerConfig, ImageConfig, ImageMetaResolver, ResolveImageOpt, ResolvedImage,
    ResolvedImageConfig,
};
pub use local::{local, Local, LocalDiffer};
pub use marshal::{marshal, marshal_with, MarshalOptions};
pub use merge::{diff, diff_with, merge, merge_with};
pub use mount::{CacheSharing, Mount, Secret, Ssh};
pub use options::OpOptions;
pub use platform::{host_platform, normalize_platform};
pub use reference::normalize_image_ref;
pub use run::Run;
pub use shlex::shlex_split;
pub use source::{image, scratch, source, source_with, Image, ResolveMode};
pub use sourcemap::{SourceLocation, SourceMap};
pub use state::State;

pub use nodekit_proto::pb::{NetMode, SecurityMode};
