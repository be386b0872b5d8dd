//! Display names of vertices, as BuildKit shows them in progress output
//! (`solver/llbsolver/vertex.go`: `llbOpName`, `fileOpName`).

use nodekit_proto::pb;
use pb::file_action::Action;
use pb::op::Op as OpKind;

/// The `OpMetadata.description` key of a user-chosen vertex name.
pub const CUSTOM_NAME_KEY: &str = "llb.customname";

/// The name of an op kind, as in the protobuf oneof.
pub(crate) fn kind_name(kind: &OpKind) -> &'static str {
    match kind {
        OpKind::Exec(_) => "exec",
        OpKind::Source(_) => "source",
        OpKind::File(_) => "file",
        OpKind::Build(_) => "build",
        OpKind::Merge(_) => "merge",
        OpKind::Diff(_) => "diff",
        OpKind::Passthrough(_) => "passthrough",
    }
}

/// A vertex's display name: its custom name if it has one, else derived from the op. Merge and
/// diff names embed their inputs' names, given by `input_name(input position)`.
pub(crate) fn display_name(
    op: &pb::Op,
    metadata: Option<&pb::OpMetadata>,
    input_name: impl Fn(usize) -> String,
) -> String {
    if let Some(custom) = metadata.and_then(|m| m.description.get(CUSTOM_NAME_KEY)) {
        return custom.clone();
    }
    match &op.op {
        Some(OpKind::Source(source)) => source.identifier.clone(),
        Some(OpKind::Exec(exec)) => exec
            .meta
            .as_ref()
            .map(|m| m.args.join(" "))
            .unwrap_or_default(),
        Some(OpKind::File(file)) => file_name(&file.actions),
        Some(OpKind::Build(_)) => "build".to_string(),
        Some(OpKind::Merge(_)) => {
            let names: Vec<String> = (0..op.inputs.len()).map(&input_name).collect();
            format!("merge ({})", names.join(", "))
        }
        Some(OpKind::Diff(diff)) => {
            let side = |input: Option<i64>| match input.and_then(|i| usize::try_from(i).ok()) {
                Some(i) => format!("({})", input_name(i)),
                None => "scratch".to_string(),
            };
            let lower = side(diff.lower.as_ref().map(|l| l.input));
            let upper = side(diff.upper.as_ref().map(|u| u.input));
            format!("diff {lower} -> {upper}")
        }
        Some(OpKind::Passthrough(pass)) => format!("passthrough {}", pass.id),
        None => "unknown".to_string(),
    }
}

fn file_name(actions: &[pb::FileAction]) -> String {
    let names: Vec<String> = actions
        .iter()
        .filter_map(|a| a.action.as_ref())
        .map(|action| match action {
            Action::Mkdir(m) => format!("mkdir {}", m.path),
            Action::Mkfile(m) => format!("mkfile {}", m.path),
            Action::Symlink(s) => format!("symlink {} -> {}", s.newpath, s.oldpath),
            Action::Rm(r) => format!("rm {}", r.path),
            Action::Copy(c) => format!("copy {} {}", c.src, c.dest),
        })
        .collect();
    names.join(", ")
}
