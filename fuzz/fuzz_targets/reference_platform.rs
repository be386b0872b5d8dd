//! Image references and platforms as requests carry them: an error is fine, a panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = nodekit_oci::Reference::parse_normalized(text);
    let _ = nodekit_oci::Reference::parse_with_default_tag(text);
    let _ = nodekit_oci::Platform::parse(text);
});
