//! A cache bundle as `nodekit cache import` hands it to the daemon, read section by section with
//! every blob read through: an error is fine, a panic (or an unbounded allocation) is a bug.
//!
//! An input whose first byte is even is read as it is (the signature, the zstd frame and all);
//! one whose first byte is odd has the rest compressed behind a valid signature first, so the
//! fuzzer also reaches the sections inside the frame without having to forge zstd.
#![no_main]

use std::io::Read;

use cachestore::bundle::{read_bundle, BlobHeader, BundleHeader, BundleVisitor, BUNDLE_VERSION, MAGIC};
use cachestore::Record;
use libfuzzer_sys::fuzz_target;

/// Takes everything it is handed; reads each blob to its end.
struct Accept;

impl BundleVisitor for Accept {
    fn header(&mut self, _: &BundleHeader) -> Result<(), String> {
        Ok(())
    }

    fn blob(&mut self, _: &BlobHeader, data: &mut dyn Read) -> Result<(), String> {
        std::io::copy(data, &mut std::io::sink()).map(drop).map_err(|e| e.to_string())
    }

    fn record(&mut self, _: Record) -> Result<(), String> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bundle = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let mut framed = MAGIC.to_vec();
        framed.extend_from_slice(&BUNDLE_VERSION.to_be_bytes());
        framed.extend(zstd::encode_all(rest, 1).expect("zstd compresses"));
        framed
    };
    let _ = read_bundle(bundle.as_slice(), &mut Accept);
});
