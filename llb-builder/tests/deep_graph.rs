//! A long chain of ops marshals and drops with no recursion as deep as the chain: on a thread
//! of a small stack (a tokio worker's is 2 MiB), a chain of some thousands of ops (a long
//! Dockerfile's RUN and COPY steps) overflowed it, in the marshaller's walk and in the graph's
//! drop.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use nodekit_llb_builder::{marshal, scratch, FileAction, Mkdir};

const OPS: usize = 20_000;

#[test]
fn a_long_chain_of_ops_marshals_and_drops_on_a_small_stack() {
    let on_small_stack = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let mut state = scratch();
            for i in 0..OPS {
                state = match i % 2 {
                    0 => state.file(FileAction::new(Mkdir::new(&format!("/d{i}"), 0o755))),
                    _ => state.run(["true", &i.to_string()]).root(),
                };
            }
            let definition = marshal(&state).unwrap();
            // Every op once, and the terminal op.
            assert_eq!(definition.def.len(), OPS + 1);
            drop(state);
        })
        .unwrap();
    on_small_stack
        .join()
        .expect("the chain is marshalled and dropped");
}
