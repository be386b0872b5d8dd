//! A buildkitd.toml as `nodekitd --config` loads it (parsed, audited for keys nodekit does not
//! honour, merged with the defaults): an error is fine, a panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = nodekitd::config::Config::from_file_text(text);
    }
});
