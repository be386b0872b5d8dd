//! COPY and ADD: FileOp copies from the build context, another stage or an image (and heredoc
//! files), with upstream's destination rules, ownership, modes, exclusions and `--link`.

use nodekit_dockerfile::{AddInstruction, CopyInstruction, SourceContent};
use nodekit_llb_builder::{merge, scratch, Chown, Copy, FileAction, Mkfile, State};

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
    unpack: bool,
}

pub fn apply_copy(
    stage: &mut StageBuilder<'_>,
    copy: &CopyInstruction,
    original: &str,
) -> Result<(), SolveError> {
    if copy.parents {
        return Err(stage
            .scope
            .error("COPY --parents is not supported by nodekitd yet"));
    }
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
        unpack: false,
    };
    copy_files(stage, &from, &spec, original)
}

pub fn apply_add(
    stage: &mut StageBuilder<'_>,
    add: &AddInstruction,
    original: &str,
) -> Result<(), SolveError> {
    if let Some(url) = add
        .sources
        .iter()
        .find(|s| s.contains("://") || s.starts_with("git@"))
    {
        return Err(stage.scope.error(format!(
            "ADD from a URL ({url}) is not supported by nodekitd yet"
        )));
    }
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
        unpack: add.unpack.unwrap_or(true),
    };
    copy_files(stage, &context, &spec, original)
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
        let copy = configure(Copy::new(from, source, &dest), spec, &stage.scope)?;
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
    stage.state = match spec.link {
        // --link: the files land in a layer of their own, independent of what is below.
        true => merge(&[stage.state.clone(), scratch().file_with(action, options)]),
        false => stage.state.file_with(action, options),
    };
    let history = history_line(spec);
    stage.image.add_history(&history, false);
    Ok(())
}

/// `COPY --chown=u --chmod=m src <<EOF dest # buildkit`, as upstream records it.
fn history_line(spec: &CopySpec<'_>) -> String {
    let mut words = vec![spec.keyword.to_string()];
    words.extend(spec.chown.map(|c| format!("--chown={c}")));
    words.extend(spec.chmod.map(|m| format!("--chmod={m}")));
    words.extend(spec.sources.iter().cloned());
    words.extend(spec.contents.iter().map(|c| format!("<<{}", c.path)));
    words.push(spec.dest.to_string());
    format!("{} # buildkit", words.join(" "))
}

fn chain(action: Option<FileAction>, copy: Copy) -> FileAction {
    match action {
        Some(action) => action.then(copy),
        None => FileAction::new(copy),
    }
}

/// The copy options upstream's COPY and ADD use.
fn configure(copy: Copy, spec: &CopySpec<'_>, scope: &super::Scope) -> Result<Copy, SolveError> {
    let mut copy = copy
        .follow_symlinks(true)
        .copy_dir_contents_only(true)
        .create_dest_path(true)
        .allow_wildcard(true)
        .allow_empty_wildcard(true)
        .attempt_unpack(spec.unpack)
        .exclude_patterns(spec.excludes);
    if let Some(owner) = spec.chown {
        copy = copy.chown(Chown::parse(owner));
    }
    if let Some(mode) = spec.chmod {
        copy = match mode.chars().all(|c| c.is_ascii_digit()) {
            true => match u32::from_str_radix(mode, 8) {
                Ok(bits) if bits <= 0o7777 => copy.mode(bits),
                _ => {
                    return Err(scope.error(format!(
                        "invalid chmod parameter: '{mode}'. it should be octal string and between 0 and 07777"
                    )))
                }
            },
            false => copy.mode_str(mode),
        };
    }
    Ok(copy)
}

/// The destination inside the stage: relative to the working directory, a trailing `/` (or
/// `.`) kept so that sources land inside it.
fn destination(stage: &StageBuilder<'_>, dest: &str) -> String {
    let joined = match dest.starts_with('/') {
        true => nodekit_llb::pathutil::clean(dest),
        false => nodekit_llb::pathutil::join(&[&stage.current_dir(), dest]),
    };
    let into_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    match into_dir && !joined.ends_with('/') {
        true => format!("{joined}/"),
        false => joined,
    }
}
