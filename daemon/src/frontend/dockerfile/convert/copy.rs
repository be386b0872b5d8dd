//! COPY and ADD: FileOp copies from the build context, another stage or an image (and heredoc
//! files), with upstream's destination rules, ownership, modes, exclusions and `--link`.

use nodekit_dockerfile::{AddInstruction, CopyInstruction, SourceContent};
use nodekit_llb_builder::{
    merge, scratch, Chown, Copy, FileAction, Http, Mkfile, OpOptions, State,
};

use super::add_git;
use super::stage::StageBuilder;
use crate::solver::SolveError;

struct CopySpec<'a> {
    keyword: &'static str,
    sources: &'a [String],
    contents: &'a [SourceContent],
    dest: &'a str,
    chown: Option<&'a str>,
    chmod: Option<&'a str>,
    link: bool,
    excludes: &'a [String],
    /// Whether archives are extracted; unset: local archives are, downloads are not.
    unpack: Option<bool>,
    /// `--parents`: keep each source's directories (below a `/./` pivot) under the destination.
    parents: bool,
    /// ADD `--checksum`: the digest a downloaded file must have.
    checksum: Option<&'a str>,
}

pub fn apply_copy(
    stage: &mut StageBuilder<'_>,
    copy: &CopyInstruction,
    original: &str,
) -> Result<(), SolveError> {
    let from = stage
        .stages
        .source_state(copy.from.as_deref(), &stage.scope)?;
    let spec = CopySpec {
        keyword: "COPY",
        sources: &copy.sources,
        contents: &copy.contents,
        dest: &copy.dest,
        chown: copy.chown.as_deref(),
        chmod: copy.chmod.as_deref(),
        link: copy.link,
        excludes: &copy.excludes,
        unpack: Some(false),
        parents: copy.parents,
        checksum: None,
    };
    copy_files(stage, &from, &spec, original)
}

pub fn apply_add(
    stage: &mut StageBuilder<'_>,
    add: &AddInstruction,
    original: &str,
) -> Result<(), SolveError> {
    if let Some(git) = add.sources.iter().find(|s| add_git::is_git_source(s)) {
        return add_from_git(stage, add, git, original);
    }
    check_checksum(add, &stage.scope)?;
    let context = stage.stages.source_state(None, &stage.scope)?;
    let spec = CopySpec {
        keyword: "ADD",
        sources: &add.sources,
        contents: &add.contents,
        dest: &add.dest,
        chown: add.chown.as_deref(),
        chmod: add.chmod.as_deref(),
        link: add.link,
        excludes: &add.excludes,
        unpack: add.unpack,
        parents: false,
        checksum: add.checksum.as_deref(),
    };
    copy_files(stage, &context, &spec, original)
}

/// Upstream's rules for ADD `--checksum`: one source, downloaded.
fn check_checksum(add: &AddInstruction, scope: &super::Scope) -> Result<(), SolveError> {
    if add.checksum.is_none() {
        return Ok(());
    }
    if add.sources.len() != 1 {
        return Err(scope.error("checksum can't be specified for multiple sources"));
    }
    if add.sources.first().is_some_and(|s| is_http_source(s)) {
        Ok(())
    } else {
        Err(scope.error("checksum requires HTTP(S) or Git sources"))
    }
}

fn is_http_source(source: &str) -> bool {
    (source.starts_with("http://") || source.starts_with("https://"))
        && !add_git::is_git_source(source)
}

/// Git remotes as upstream recognises them (`git@…`, `git://…`, `…​.git` URLs, `#ref` forms).
/// `ADD <git repository> <dest>`: the checkout's files into the destination.
fn add_from_git(
    stage: &mut StageBuilder<'_>,
    add: &AddInstruction,
    git: &str,
    original: &str,
) -> Result<(), SolveError> {
    if add.sources.len() + add.contents.len() > 1 {
        return Err(stage.scope.error(format!(
            "ADD from a Git repository ({git}) takes it as its only source"
        )));
    }
    let parsed =
        add_git::GitRef::parse(git).map_err(|e| stage.scope.error(format!("ADD {git}: {e}")))?;
    let from = parsed.state(add);
    let sources = vec!["/".to_string()];
    let spec = CopySpec {
        keyword: "ADD",
        sources: &sources,
        contents: &[],
        dest: &add.dest,
        chown: add.chown.as_deref(),
        chmod: add.chmod.as_deref(),
        link: add.link,
        excludes: &add.excludes,
        unpack: Some(false),
        parents: false,
        checksum: None,
    };
    copy_files(stage, &from, &spec, original)
}

fn copy_files(
    stage: &mut StageBuilder<'_>,
    from: &State,
    spec: &CopySpec<'_>,
    original: &str,
) -> Result<(), SolveError> {
    let count = spec.sources.len() + spec.contents.len();
    if count > 1 && !spec.dest.ends_with('/') {
        return Err(stage.scope.error(format!(
            "When using {} with more than one source file, the destination must be a directory and end with a /",
            spec.keyword
        )));
    }
    let dest = destination(stage, spec.dest);
    let mut action: Option<FileAction> = None;
    for source in spec.sources {
        let copy = if is_http_source(source) {
            download(stage, source, &dest, spec, original)?
        } else {
            local_copy(from, source, &dest, spec, &stage.scope)?
        };
        action = Some(chain(action, copy));
    }
    for content in spec.contents {
        let file = scratch().file(Mkfile::new(&content.path, 0o644, content.data.clone()));
        let copy = configure(Copy::new(&file, &content.path, &dest), spec, &stage.scope)?;
        action = Some(chain(action, copy));
    }
    let Some(action) = action else {
        return Err(stage
            .scope
            .error(format!("{} requires at least two arguments", spec.keyword)));
    };
    let options = stage.op_options(&stage.step_name(original));
    stage.state = if spec.link {
        // --link: the files land in a layer of their own, independent of what is below.
        merge(&[stage.state.clone(), scratch().file_with(action, options)])
    } else {
        stage.state.file_with(action, options)
    };
    let history = history_line(spec);
    stage.image.add_history(&history, false);
    Ok(())
}

/// `COPY --chown=u --chmod=m src <<EOF dest # buildkit`, as upstream records it.
fn history_line(spec: &CopySpec<'_>) -> String {
    let mut words = vec![spec.keyword.to_string()];
    words.extend(spec.parents.then(|| "--parents".to_string()));
    words.extend(spec.chown.map(|c| format!("--chown={c}")));
    words.extend(spec.chmod.map(|m| format!("--chmod={m}")));
    words.extend(spec.sources.iter().cloned());
    words.extend(spec.contents.iter().map(|c| format!("<<{}", c.path)));
    words.push(spec.dest.to_string());
    format!("{} # buildkit", words.join(" "))
}

/// A copy of a context (or stage, or image) path; with `--parents`, the path below the `/./`
/// pivot (or all of it) is kept under the destination, by copying from the pivot with the rest
/// as an include pattern.
fn local_copy(
    from: &State,
    source: &str,
    dest: &str,
    spec: &CopySpec<'_>,
    scope: &super::Scope,
) -> Result<Copy, SolveError> {
    if !spec.parents {
        return configure(Copy::new(from, source, dest), spec, scope);
    }
    let (pivot, pattern) = source.split_once("/./").unwrap_or(("/", source));
    let pattern = nodekit_llb::pathutil::clean(&format!("/{pattern}"));
    let include = [pattern.trim_start_matches('/').to_string()];
    let pivot = nodekit_llb::pathutil::clean(&format!("/{pivot}"));
    let copy = configure(Copy::new(from, &pivot, dest), spec, scope)?;
    Ok(copy.include_patterns(&include))
}

/// ADD of a URL: the daemon downloads the file (named after the URL's last path element, mode
/// 0600 unless `--chmod`), then it is copied like a local file but never unpacked by default.
fn download(
    stage: &StageBuilder<'_>,
    url: &str,
    dest: &str,
    spec: &CopySpec<'_>,
    original: &str,
) -> Result<Copy, SolveError> {
    let name = url_file_name(url);
    let mut http = Http::new(url)
        .filename(&name)
        .options(OpOptions::new().custom_name(stage.step_name(original)));
    if let Some(digest) = spec.checksum {
        if !digest.starts_with("sha256:") || digest.len() != 71 {
            return Err(stage
                .scope
                .error(format!("invalid checksum digest format: {digest}")));
        }
        http = http.checksum(digest);
    }
    let copy = Copy::new(http.into_state(), &name, dest)
        .create_dest_path(true)
        .attempt_unpack(spec.unpack.unwrap_or(false))
        .exclude_patterns(spec.excludes);
    with_owner_and_mode(copy, spec, &stage.scope)
}

/// The last element of the URL's path, as upstream names downloads (`__unnamed__` without one).
pub(super) fn url_file_name(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .split_once('/')
        .map_or("", |(_, path)| path);
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(base) if !base.is_empty() && base != "." => base.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

fn chain(action: Option<FileAction>, copy: Copy) -> FileAction {
    match action {
        Some(action) => action.then(copy),
        None => FileAction::new(copy),
    }
}

/// The copy options upstream's COPY and ADD use for files of the context, a stage or an image.
fn configure(copy: Copy, spec: &CopySpec<'_>, scope: &super::Scope) -> Result<Copy, SolveError> {
    let copy = copy
        .follow_symlinks(true)
        .copy_dir_contents_only(true)
        .create_dest_path(true)
        .allow_wildcard(true)
        .allow_empty_wildcard(true)
        .attempt_unpack(spec.unpack.unwrap_or(true))
        .exclude_patterns(spec.excludes);
    with_owner_and_mode(copy, spec, scope)
}

/// `--chown` and `--chmod` (octal, or symbolic as `u+x`).
fn with_owner_and_mode(
    mut copy: Copy,
    spec: &CopySpec<'_>,
    scope: &super::Scope,
) -> Result<Copy, SolveError> {
    if let Some(owner) = spec.chown {
        copy = copy.chown(Chown::parse(owner));
    }
    let Some(mode) = spec.chmod else {
        return Ok(copy);
    };
    if !mode.chars().all(|c| c.is_ascii_digit()) {
        return Ok(copy.mode_str(mode));
    }
    match u32::from_str_radix(mode, 8) {
        Ok(bits) if bits <= 0o7777 => Ok(copy.mode(bits)),
        _ => Err(scope.error(format!(
            "invalid chmod parameter: '{mode}'. it should be octal string and between 0 and 07777"
        ))),
    }
}

/// The destination inside the stage: relative to the working directory, a trailing `/` (or
/// `.`) kept so that sources land inside it.
fn destination(stage: &StageBuilder<'_>, dest: &str) -> String {
    let joined = if dest.starts_with('/') {
        nodekit_llb::pathutil::clean(dest)
    } else {
        nodekit_llb::pathutil::join(&[&stage.current_dir(), dest])
    };
    let into_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    if into_dir && !joined.ends_with('/') {
        format!("{joined}/")
    } else {
        joined
    }
}
