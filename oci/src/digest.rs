use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of `bytes`, the form containerd and registries use.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The chain ID of a stack of layers (OCI image spec, "ChainID"): the first diff ID itself,
/// then `sha256(parent_chain + " " + diff_id)` for each further layer. containerd names the
/// committed snapshot of an unpacked layer after it, so matching it lets nodekit and the kubelet
/// share snapshots.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(parent) => sha256_digest(format!("{parent} {diff_id}").as_bytes()),
    }
}

/// The chain IDs of every prefix of `diff_ids`, bottom layer first.
pub fn chain_ids<S: AsRef<str>>(diff_ids: &[S]) -> Vec<String> {
    let mut chains: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = chain_id(chains.last().map(String::as_str), diff_id.as_ref());
        chains.push(next);
    }
    chains
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_of_one_layer_is_its_diff_id() {
        assert_eq!(chain_ids(&["sha256:aa"]), vec!["sha256:aa".to_string()]);
    }

    #[test]
    fn chain_id_matches_the_image_spec_definition() {
        // sha256("sha256:aa sha256:bb"), computed independently with sha256sum.
        let chains = chain_ids(&["sha256:aa", "sha256:bb"]);
        assert_eq!(chains[1], sha256_digest(b"sha256:aa sha256:bb"));
        assert_eq!(
            sha256_digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
