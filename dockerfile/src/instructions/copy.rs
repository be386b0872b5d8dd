//! `ADD` and `COPY`: flags, sources (paths and heredocs) and destination.

use super::flags::{self, Kind};
use super::types::{AddInstruction, CopyInstruction, SourceContent};
use crate::ast::Node;
use crate::parser::{chomp_heredoc_content, parse_heredoc};

const ADD_FLAGS: &[(&str, Kind)] = &[
    ("chown", Kind::Str),
    ("chmod", Kind::Str),
    ("link", Kind::Bool),
    ("keep-git-dir", Kind::Bool),
    ("checksum", Kind::Str),
    ("unpack", Kind::Bool),
    ("exclude", Kind::List),
];

const COPY_FLAGS: &[(&str, Kind)] = &[
    ("chown", Kind::Str),
    ("from", Kind::Str),
    ("chmod", Kind::Str),
    ("link", Kind::Bool),
    ("exclude", Kind::List),
    ("parents", Kind::Bool),
];

/// Sources and destination shared by ADD and COPY.
struct SourcesAndDest {
    sources: Vec<String>,
    contents: Vec<SourceContent>,
    dest: String,
}

fn min_args(node: &Node, cmd: &str) -> Result<(), String> {
    if node.args.len() < 2 {
        return Err(format!(
            "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    Ok(())
}

/// Builds the typed ADD.
pub(crate) fn parse_add(node: &Node) -> Result<AddInstruction, String> {
    min_args(node, "ADD")?;
    let f = flags::parse(&node.flags, ADD_FLAGS)?;
    let sd = sources_and_dest(node, "ADD")?;
    Ok(AddInstruction {
        sources: sd.sources,
        contents: sd.contents,
        dest: sd.dest,
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link").unwrap_or(false),
        keep_git_dir: f.bool("keep-git-dir"),
        checksum: f.string("checksum"),
        unpack: f.bool("unpack"),
        excludes: f.list("exclude"),
    })
}

/// Builds the typed COPY.
pub(crate) fn parse_copy(node: &Node) -> Result<CopyInstruction, String> {
    min_args(node, "COPY")?;
    let f = flags::parse(&node.flags, COPY_FLAGS)?;
    let sd = sources_and_dest(node, "COPY")?;
    Ok(CopyInstruction {
        sources: sd.sources,
        contents: sd.contents,
        dest: sd.dest,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link").unwrap_or(false),
        parents: f.bool("parents").unwrap_or(false),
        excludes: f.list("exclude"),
    })
}

/// Splits arguments into path sources, heredoc sources and destination
/// (upstream `parseSourcesAndDest`).
fn sources_and_dest(node: &Node, cmd: &str) -> Result<SourcesAndDest, String> {
    let Some((dest, srcs)) = node.args.split_last() else {
        return Err(format!("{cmd} requires at least two arguments"));
    };
    if let Ok(Some(_)) = parse_heredoc(dest) {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut out = SourcesAndDest {
        sources: Vec::new(),
        contents: Vec::new(),
        dest: dest.clone(),
    };
    for src in srcs {
        match parse_heredoc(src) {
            Ok(Some(marker)) => out.contents.push(heredoc_content(node, &marker)),
            _ => out.sources.push(src.clone()),
        }
    }
    Ok(out)
}

/// Content for a heredoc source: the body of the (last) heredoc with that
/// name, chomped per the marker; empty when the body is unknown.
fn heredoc_content(node: &Node, marker: &crate::ast::Heredoc) -> SourceContent {
    let body = node
        .heredocs
        .iter()
        .rev()
        .find(|h| h.name == marker.name)
        .map(|h| h.content.as_str())
        .unwrap_or("");
    SourceContent {
        path: marker.name.clone(),
        data: if marker.chomp {
            chomp_heredoc_content(body)
        } else {
            body.to_string()
        },
        expand: marker.expand,
    }
}
