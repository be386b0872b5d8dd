//! Generates Rust code for every .proto under `proto/` into OUT_DIR.

use std::io;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let root = PathBuf::from("proto");
    // Well-known types, declared for import resolution; prost maps them to prost_types.
    let well_known = PathBuf::from("include");
    let mut protos = Vec::new();
    collect(&root, &mut protos)?;
    protos.sort();
    // New or removed files are picked up too, not only edits to known ones.
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed={}", well_known.display());

    tonic_prost_build::configure()
        // Ordered maps encode deterministically, like Go's marshaller: LLB op digests are
        // hashes of the encoded bytes, so the same op must always encode the same way.
        .btree_map(".")
        // Bulk data shares the decoder's buffer instead of being copied out of it: the session
        // pipe's bytes and the file content inside it.
        .bytes(".moby.buildkit.v1.BytesMessage.data")
        .bytes(".fsutil.types.Packet.data")
        .bytes(".moby.sshforward.v1.BytesMessage.data")
        .bytes(".nodekit.cache.v1.ImportChunk.data")
        .bytes(".nodekit.cache.v1.ExportMessage.data")
        .bytes(".containerd.services.content.v1.WriteContentRequest.data")
        .bytes(".containerd.services.content.v1.ReadContentResponse.data")
        // LLB ops as readable JSON, for the Dockerfile converter's golden tests only (feature
        // `serde`, which nothing but tests turns on).
        .type_attribute(
            ".pb",
            "#[cfg_attr(feature = \"serde\", derive(serde::Serialize))]",
        )
        .build_client(true)
        .build_server(true)
        .compile_protos(&protos, &[root, well_known])
}
