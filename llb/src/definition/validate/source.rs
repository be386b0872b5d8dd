//! Source op checks.

use nodekit_proto::pb;

use crate::definition::error::{LlbError, OpAt};

/// The identifier schemes BuildKit registers (`source/types/types.go`).
pub(crate) const SOURCE_SCHEMES: [&str; 8] = [
    "docker-image",
    "docker-image+blob",
    "git",
    "local",
    "http",
    "https",
    "oci-layout",
    "oci-layout+blob",
];

pub(super) fn validate(at: OpAt, source: &pb::SourceOp) -> Result<(), LlbError> {
    let id = &source.identifier;
    let field = "source.identifier";
    let Some((scheme, rest)) = id.split_once("://") else {
        return Err(at.error(
            field,
            format!(
                "{id:?} has no scheme: expected <scheme>://..., with scheme one of {}",
                schemes()
            ),
        ));
    };
    if !SOURCE_SCHEMES.contains(&scheme) {
        return Err(at.error(
            field,
            format!(
                "{id:?} has unknown scheme {scheme:?}: expected one of {}",
                schemes()
            ),
        ));
    }
    if rest.is_empty() {
        return Err(at.error(field, format!("{id:?} names nothing after \"{scheme}://\"")));
    }
    Ok(())
}

fn schemes() -> String {
    SOURCE_SCHEMES.join(", ")
}
