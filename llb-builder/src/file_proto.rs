//! File actions in protobuf form: paths resolved against working directories, owners, modes
//! and times exactly as BuildKit's client writes them.

use nodekit_llb::pathutil;
use nodekit_proto::pb;
use pb::file_action::Action as Proto;

use crate::copy::{Copy, CopyMode};
use crate::file::{Action, Chown, CopySource, UserRef};
use crate::state::State;

/// The protobuf action for `action` bound to `state`, whose op input is `base` (-1: scratch).
pub(crate) fn proto_action(action: &Action, state: &State, base: i64) -> Proto {
    let parent = state.get_dir();
    match action {
        Action::Mkdir(a) => Proto::Mkdir(pb::FileActionMkDir {
            path: normalize_path(parent, &a.path, false),
            mode: (a.mode & 0o777) as i32,
            make_parents: a.parents,
            owner: chown(a.chown.as_ref(), base),
            timestamp: time(a.created),
        }),
        Action::Mkfile(a) => Proto::Mkfile(pb::FileActionMkFile {
            path: normalize_path(parent, &a.path, false),
            mode: (a.mode & 0o777) as i32,
            data: a.data.clone(),
            owner: chown(a.chown.as_ref(), base),
            timestamp: time(a.created),
        }),
        Action::Rm(a) => Proto::Rm(pb::FileActionRm {
            path: normalize_path(parent, &a.path, false),
            allow_not_found: a.allow_not_found,
            allow_wildcard: a.allow_wildcard,
        }),
        Action::Symlink(a) => Proto::Symlink(pb::FileActionSymlink {
            oldpath: a.oldpath.clone(),
            newpath: a.newpath.clone(),
            owner: chown(a.chown.as_ref(), base),
            timestamp: time(a.created),
        }),
        Action::Copy(a) => Proto::Copy(copy(a, parent, base)),
    }
}

fn copy(a: &Copy, parent: &str, base: i64) -> pb::FileActionCopy {
    let i = &a.info;
    let (mode, mode_str) = match &i.mode {
        None => (-1, String::new()),
        Some(CopyMode::Bits(bits)) => (*bits as i32, String::new()),
        Some(CopyMode::Symbolic(s)) => (0, s.clone()),
    };
    pb::FileActionCopy {
        src: source_path(a),
        dest: normalize_path(parent, &a.dest, true),
        owner: chown(i.chown.as_ref(), base),
        mode,
        follow_symlink: i.follow_symlinks,
        dir_copy_contents: i.copy_dir_contents_only,
        attempt_unpack_docker_compatibility: i.attempt_unpack,
        create_dest_path: i.create_dest_path,
        allow_wildcard: i.allow_wildcard,
        allow_empty_wildcard: i.allow_empty_wildcard,
        timestamp: time(i.created),
        include_patterns: i.include_patterns.clone(),
        exclude_patterns: i.exclude_patterns.clone(),
        always_replace_existing_dest_paths: i.always_replace_existing_dest_paths,
        mode_str,
        required_paths: i.required_paths.clone(),
    }
}

/// The copy's source path: cleaned, and joined to the source state's directory if relative.
fn source_path(a: &Copy) -> String {
    let p = pathutil::clean(&a.src);
    if p.starts_with('/') {
        return pathutil::join(&["/", &p]);
    }
    let dir = match &a.source {
        CopySource::State(s) => s.get_dir(),
        CopySource::Actions(bound) => bound.state.get_dir(),
    };
    pathutil::join(&[dir, &p])
}

/// BuildKit's `normalizePath`: clean `p`, make it absolute under `parent`, and with
/// `keep_slash` keep a trailing `/` or `/.` (they matter to copy destinations).
pub(crate) fn normalize_path(parent: &str, p: &str, keep_slash: bool) -> String {
    let mut out = pathutil::clean(p);
    if !out.starts_with('/') {
        out = pathutil::join(&["/", parent, &out]);
    }
    if keep_slash {
        if p.ends_with('/') && !out.ends_with('/') {
            out.push('/');
        } else if p.ends_with("/.") {
            if out != "/" {
                out.push('/');
            }
            out.push('.');
        }
    }
    out
}

/// A time in nanoseconds, or -1 for "not set".
fn time(created: Option<i64>) -> i64 {
    created.unwrap_or(-1)
}

fn chown(owner: Option<&Chown>, base: i64) -> Option<pb::ChownOpt> {
    let owner = owner?;
    Some(pb::ChownOpt {
        user: owner.user.as_ref().map(|u| user(u, base)),
        group: owner.group.as_ref().map(|g| user(g, base)),
    })
}

/// A named user is looked up in the op input `base`; an empty name means id 0.
fn user(u: &UserRef, base: i64) -> pb::UserOpt {
    let user = match u {
        UserRef::Name(name) if !name.is_empty() => pb::user_opt::User::ByName(pb::NamedUserOpt {
            name: name.clone(),
            input: base,
        }),
        UserRef::Name(_) => pb::user_opt::User::ById(0),
        UserRef::Id(id) => pb::user_opt::User::ById(*id),
    };
    pb::UserOpt { user: Some(user) }
}

#[cfg(test)]
mod tests {
    use super::normalize_path;

    #[test]
    fn normalizes_like_buildkit() {
        let cases = [
            ("/", "foo", false, "/foo"),
            ("/w", "a/../b", false, "/w/b"),
            ("/w", "/abs/", false, "/abs"),
            ("/w", "dir/", true, "/w/dir/"),
            ("/w", ".", true, "/w"),
            ("/w", "./", true, "/w/"),
            ("/w", "x/.", true, "/w/x/."),
            ("/", "/.", true, "/."),
            ("", "rel", false, "/rel"),
        ];
        for (parent, p, keep, want) in cases {
            assert_eq!(
                normalize_path(parent, p, keep),
                want,
                "{parent:?} {p:?} {keep}"
            );
        }
    }
}
