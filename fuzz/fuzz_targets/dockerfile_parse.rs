//! The Dockerfile parser and the shell-word lexer on any text: an error is fine, a panic (or
//! a hang, which libFuzzer reports as a timeout) is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodekit_dockerfile::{EmptyEnv, Lexer};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = nodekit_dockerfile::parse(text);
    let vars: Vec<(String, String)> = vec![("A".into(), "a b".into()), ("B".into(), String::new())];
    for escape in ['\\', '`'] {
        let lexer = Lexer::new(escape);
        let _ = lexer.process_word(text, &EmptyEnv);
        let _ = lexer.process_words(text, &vars);
    }
});
