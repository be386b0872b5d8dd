//! Puts a case's inputs in a private temporary directory: the Dockerfile directory (every file of
//! the case but `case.toml` and the context), the build context with what `[setup]` creates, and
//! extra locals. Nothing generated lands in the source tree.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::case::{Case, TarSpec};
use crate::Placeholders;

pub struct Staged {
    _dir: tempfile::TempDir,
    pub dockerfile_dir: PathBuf,
    pub context: PathBuf,
    pub locals: BTreeMap<String, PathBuf>,
}

pub fn stage(case: &Case, vars: &Placeholders) -> Result<Staged> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("nodekit-dfconf-{}-", case.name))
        .tempdir()?;
    let build = &case.spec.build;
    let dockerfile_dir = dir.path().join("dockerfile");
    let context = dir.path().join("context");
    std::fs::create_dir_all(&dockerfile_dir)?;
    std::fs::create_dir_all(&context)?;

    let skip: Vec<&str> = std::iter::once("case.toml")
        .chain(std::iter::once(build.context.as_str()))
        .chain(build.locals.values().map(String::as_str))
        .collect();
    for entry in std::fs::read_dir(&case.dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) {
            continue;
        }
        copy_tree(&entry.path(), &dockerfile_dir.join(&name))?;
    }
    for dockerfile in case.spec.prebuild.iter().map(|p| &p.dockerfile) {
        fill_placeholders(&dockerfile_dir.join(dockerfile), vars)?;
    }
    fill_placeholders(&dockerfile_dir.join(&build.dockerfile), vars)?;
    transform_dockerfile(case, &dockerfile_dir)?;

    let source = case.dir.join(&build.context);
    if source.is_dir() {
        copy_tree(&source, &context)?;
    }
    apply_setup(case, &context).context("[setup]")?;

    let mut locals = BTreeMap::new();
    for (name, sub) in &build.locals {
        let target = dir.path().join("locals").join(name);
        std::fs::create_dir_all(&target)?;
        let source = case.dir.join(sub);
        if !source.is_dir() {
            bail!("local {name}: no directory {sub} in the case");
        }
        copy_tree(&source, &target)?;
        locals.insert(name.clone(), target);
    }
    Ok(Staged {
        _dir: dir,
        dockerfile_dir,
        context,
        locals,
    })
}

/// CRLF line endings and a byte order mark, when the case asks for them.
/// Writes the run's values (the registry image's address, say) into a staged Dockerfile.
fn fill_placeholders(path: &Path, vars: &Placeholders) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(()); // a case about a missing Dockerfile
    };
    let filled = vars.apply(&text);
    if filled != text {
        std::fs::write(path, filled)?;
    }
    Ok(())
}

fn transform_dockerfile(case: &Case, dockerfile_dir: &Path) -> Result<()> {
    let build = &case.spec.build;
    if build.line_endings.is_none() && !build.bom {
        return Ok(());
    }
    let path = dockerfile_dir.join(&build.dockerfile);
    let mut text = std::fs::read_to_string(&path)?;
    match build.line_endings.as_deref() {
        None => {}
        Some("crlf") => text = text.replace('\n', "\r\n"),
        Some(other) => bail!("line_endings {other:?}: only \"crlf\""),
    }
    if build.bom {
        text.insert(0, '\u{feff}');
    }
    std::fs::write(&path, text)?;
    Ok(())
}

fn apply_setup(case: &Case, context: &Path) -> Result<()> {
    let setup = &case.spec.setup;
    for dir in &setup.dirs {
        let path = inside(context, dir)?;
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    for (file, content) in &setup.files {
        let path = inside(context, file)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    }
    for (link, target) in &setup.symlinks {
        let path = inside(context, link)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(target, &path)?;
    }
    for spec in &setup.tar {
        write_tar(&inside(context, &spec.path)?, spec).with_context(|| spec.path.clone())?;
    }
    for (file, mode) in &setup.modes {
        let mode = u32::from_str_radix(mode, 8).with_context(|| format!("mode {mode:?}"))?;
        std::fs::set_permissions(
            inside(context, file)?,
            std::fs::Permissions::from_mode(mode),
        )?;
    }
    Ok(())
}

/// A deterministic archive: members in the order given (dirs first), mtime 0, owned by 0:0.
fn write_tar(path: &Path, spec: &TarSpec) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut bytes = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut bytes);
        for dir in &spec.dirs {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            header.set_mtime(0);
            builder.append_data(&mut header, dir.trim_end_matches('/'), std::io::empty())?;
        }
        for (name, content) in &spec.files {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            header.set_mtime(0);
            builder.append_data(&mut header, name, content.as_bytes())?;
        }
        builder.finish()?;
    }
    if spec.gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&bytes)?;
        bytes = gz.finish()?;
    }
    std::fs::write(path, bytes)?;
    Ok(())
}

/// `rel` under `root`, refusing absolute paths and `..`.
fn inside(root: &Path, rel: &str) -> Result<PathBuf> {
    let rel_path = Path::new(rel);
    if rel_path.is_absolute()
        || rel_path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        bail!("{rel:?} must stay inside the context");
    }
    Ok(root.join(rel_path))
}

/// Copies files, directories and symlinks (as links), keeping modes.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
    } else if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        std::fs::set_permissions(to, meta.permissions())?;
    } else {
        std::fs::copy(from, to).with_context(|| from.display().to_string())?;
    }
    Ok(())
}
