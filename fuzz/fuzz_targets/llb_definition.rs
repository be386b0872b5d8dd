//! An LLB definition as a client sends it (protobuf bytes), decoded and loaded into a graph
//! (digests, references between ops, validation): an error is fine, a panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodekit_proto::pb;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(definition) = pb::Definition::decode(data) {
        let _ = nodekit_llb::load_or_empty(&definition);
    }
});
