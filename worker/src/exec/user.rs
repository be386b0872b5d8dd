//! `USER` resolution against the rootfs' /etc/passwd and /etc/group, as Docker does it:
//! `name`, `uid`, `name:group`, `uid:gid` and mixes; supplementary groups from /etc/group when
//! no group is given.

use nodekit_fileop::userdb::{group_entries, passwd_entries, GroupEntry};

use crate::error::{WorkerError, WorkerResult};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Whether `spec` can be resolved without reading the rootfs (root, or a numeric uid:gid).
pub fn needs_lookup(spec: &str) -> bool {
    let spec = spec.trim();
    if spec.is_empty() || spec == "root" || spec == "0" {
        return false;
    }
    match spec.split_once(':') {
        Some((user, group)) => user.parse::<u32>().is_err() || group.parse::<u32>().is_err(),
        None => true,
    }
}

/// Resolves `spec` against the contents of /etc/passwd and /etc/group (either may be absent).
pub fn resolve_user(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> WorkerResult<ResolvedUser> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(ResolvedUser::default());
    }
    let users: Vec<_> = passwd
        .map(|p| passwd_entries(p).collect())
        .unwrap_or_default();
    let groups: Vec<_> = group
        .map(|g| group_entries(g).collect())
        .unwrap_or_default();
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let unknown = |reason: &str| WorkerError::UnknownUser {
        user: spec.to_string(),
        reason: reason.to_string(),
    };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|u| u.uid == uid),
        Err(_) => Some(
            users
                .iter()
                .find(|u| u.name == user_part)
                .ok_or_else(|| unknown("no such user in the image's /etc/passwd"))?,
        ),
    };
    let uid = match user_part.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry.map(|e| e.uid).unwrap_or_default(),
    };
    let gid = match group_part {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| unknown("no such group in the image's /etc/group"))?,
        },
        None => entry.map(|e| e.gid).unwrap_or(0),
    };
    let additional_gids = match (group_part, entry) {
        (None, Some(entry)) => supplementary_gids(&groups, entry.name, gid),
        _ => Vec::new(),
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

fn supplementary_gids(groups: &[GroupEntry<'_>], user: &str, primary: u32) -> Vec<u32> {
    let mut gids: Vec<u32> = groups
        .iter()
        .filter(|g| g.gid != primary && g.members.contains(&user))
        .map(|g| g.gid)
        .collect();
    gids.dedup();
    gids
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nbuilder:x:1000:1000::/home/builder:/bin/sh\n# comment\nbroken line\n";
    const GROUP: &str = "root:x:0:\nbuilder:x:1000:\nstaff:x:50:builder,other\nwheel:x:10:root\n";

    fn resolve(spec: &str) -> WorkerResult<ResolvedUser> {
        resolve_user(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn names_resolve_with_primary_and_supplementary_groups() {
        let user = resolve("builder").unwrap();
        assert_eq!(
            (user.uid, user.gid, user.additional_gids),
            (1000, 1000, vec![50])
        );
    }

    #[test]
    fn explicit_groups_replace_supplementary_ones() {
        assert_eq!(
            resolve("builder:staff").unwrap(),
            ResolvedUser {
                uid: 1000,
                gid: 50,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            resolve("1000:10").unwrap(),
            ResolvedUser {
                uid: 1000,
                gid: 10,
                additional_gids: vec![]
            }
        );
    }

    #[test]
    fn numeric_uids_need_no_passwd_entry() {
        assert_eq!(
            resolve("4242").unwrap(),
            ResolvedUser {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(resolve_user("7:8", None, None).unwrap().gid, 8);
        assert_eq!(resolve("1000").unwrap().gid, 1000);
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        let error = resolve("nobody-here").unwrap_err().to_string();
        assert!(
            error.contains("nobody-here") && error.contains("/etc/passwd"),
            "{error}"
        );
        assert!(resolve("builder:nogroup")
            .unwrap_err()
            .to_string()
            .contains("/etc/group"));
    }

    #[test]
    fn lookup_is_skipped_only_when_not_needed() {
        assert!(!needs_lookup(""));
        assert!(!needs_lookup("0:0"));
        assert!(needs_lookup("1000"));
        assert!(needs_lookup("builder"));
        assert!(needs_lookup("0:staff"));
    }
}
