//! Helpers shared by the builder's tests.
#![allow(dead_code)]

use nodekit_llb_builder::{marshal_with, MarshalOptions, State};
use nodekit_proto::pb;
use prost::Message as _;

/// `linux/amd64`, the platform every test marshals for.
pub fn amd64() -> pb::Platform {
    pb::Platform {
        os: "linux".into(),
        architecture: "amd64".into(),
        ..Default::default()
    }
}

pub fn options() -> MarshalOptions {
    MarshalOptions {
        platform: Some(amd64()),
        ..Default::default()
    }
}

/// Marshals `state` for linux/amd64 and checks that `nodekit_llb::load` accepts the result.
pub fn build(state: &State) -> pb::Definition {
    build_with(state, &options())
}

pub fn build_with(state: &State, options: &MarshalOptions) -> pb::Definition {
    let def = marshal_with(state, options).unwrap_or_else(|e| panic!("marshal: {e}"));
    if let Err(e) = nodekit_llb::load(&def) {
        panic!(
            "nodekit_llb::load rejects the definition: {e}\n{:#?}",
            ops(&def)
        );
    }
    def
}

/// The decoded ops of a definition, terminal included.
pub fn ops(def: &pb::Definition) -> Vec<pb::Op> {
    let decode = |b: &Vec<u8>| pb::Op::decode(b.as_slice()).expect("decodes");
    def.def.iter().map(decode).collect()
}

pub fn digests(def: &pb::Definition) -> Vec<String> {
    def.def.iter().map(|b| nodekit_llb::digest_of(b)).collect()
}

/// The op the terminal op points at.
pub fn result(def: &pb::Definition) -> (pb::Op, i64) {
    let all = ops(def);
    let terminal = all.last().expect("terminal");
    let input = &terminal.inputs[0];
    let at = digests(def)
        .iter()
        .position(|d| *d == input.digest)
        .expect("result op");
    (all[at].clone(), input.index)
}

pub fn exec_of(op: &pb::Op) -> &pb::ExecOp {
    match &op.op {
        Some(pb::op::Op::Exec(exec)) => exec,
        other => panic!("not an exec op: {other:?}"),
    }
}

pub fn file_of(op: &pb::Op) -> &pb::FileOp {
    match &op.op {
        Some(pb::op::Op::File(file)) => file,
        other => panic!("not a file op: {other:?}"),
    }
}

pub fn source_of(op: &pb::Op) -> &pb::SourceOp {
    match &op.op {
        Some(pb::op::Op::Source(source)) => source,
        other => panic!("not a source op: {other:?}"),
    }
}

/// The capability ids in the metadata of the op with `digest`.
pub fn caps(def: &pb::Definition, digest: &str) -> Vec<String> {
    def.metadata[digest].caps.keys().cloned().collect()
}

/// A minimal protobuf writer, independent of prost, to spell out the bytes Go's encoder writes.
pub mod wire {
    pub fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out
    }

    /// A length-delimited field.
    pub fn bytes(field: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = varint(field << 3 | 2);
        out.extend(varint(payload.len() as u64));
        out.extend_from_slice(payload);
        out
    }

    pub fn string(field: u64, s: &str) -> Vec<u8> {
        bytes(field, s.as_bytes())
    }

    /// A varint field (int32/int64/bool/enum; negative numbers take ten bytes, as in Go).
    pub fn int(field: u64, v: i64) -> Vec<u8> {
        let mut out = varint(field << 3);
        out.extend(varint(v as u64));
        out
    }

    pub fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    /// A `map<string,string>` entry.
    pub fn map_entry(field: u64, key: &str, value: &str) -> Vec<u8> {
        bytes(field, &cat(&[string(1, key), string(2, value)]))
    }

    /// `Platform{Architecture, OS}`.
    pub fn platform(arch: &str, os: &str) -> Vec<u8> {
        bytes(10, &cat(&[string(1, arch), string(2, os)]))
    }

    /// `constraints: {}`, which BuildKit's client always writes.
    pub fn constraints() -> Vec<u8> {
        bytes(11, &[])
    }

    /// `Input{digest, index}`.
    pub fn input(field: u64, digest: &str, index: i64) -> Vec<u8> {
        let mut payload = string(1, digest);
        if index != 0 {
            payload.extend(int(2, index));
        }
        bytes(field, &payload)
    }

    pub fn digest(bytes: &[u8]) -> String {
        use sha2::Digest as _;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
    }
}
