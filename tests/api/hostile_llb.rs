//! Hostile LLB through the daemon: chains of ops deeper than a worker thread's stack would
//! take if the solver recursed (it overflowed at a few hundred), and deeper than an overlay
//! mount can stack. Each gets an answer (a result, or an error naming the bound), and the
//! daemon goes on serving.

use nodekit::build::BuildRequest;
use nodekit_llb_builder::{scratch, FileAction, Mkdir, Mkfile, State};
use nodekit_proto::pb::Definition;
use nodekit_test_support::TestDaemon;

use crate::helpers::{busybox, definition, run_build};

/// `depth` ops on `base`, each making a directory.
fn chain_of_mkdirs(base: State, depth: usize) -> State {
    let mut state = base;
    for i in 0..depth {
        state = state.file(FileAction::new(Mkdir::new(&format!("/d{i}"), 0o755)));
    }
    state
}

async fn solve(daemon: &TestDaemon, state: &State) -> Result<(), String> {
    solve_definition(daemon, definition(state)).await
}

async fn solve_definition(daemon: &TestDaemon, definition: Definition) -> Result<(), String> {
    let request = BuildRequest {
        definition: Some(definition),
        ..Default::default()
    };
    run_build(daemon, request).await.0.map(|_| ())
}

/// 150 layers' directories overflow the page of options mount(2) reads: the file ops and the
/// RUN on top of them mount them all.
#[tokio::test]
async fn a_step_on_150_layers_runs() {
    let daemon = TestDaemon::start("hostile-llb-layers").await;
    let state = chain_of_mkdirs(busybox(), 150)
        .run(["sh", "-c", "test -d /d0 && test -d /d149 && mkdir /ran"])
        .root()
        .file(FileAction::new(Mkdir::new("/after-run", 0o755)));
    solve(&daemon, &state).await.expect("the deep build");
}

/// `depth` ops in a chain whose first fails: the daemon loads and schedules the whole chain
/// without recursing (it overflowed a worker thread's stack at a few hundred), the error comes
/// back through every vertex, and the daemon goes on serving.
async fn a_failing_chain(name: &str, depth: usize) {
    let daemon = TestDaemon::start(name).await;
    let first = scratch().file(FileAction::new(Mkdir::new("/no/such/parent", 0o755)));
    // Without the optional metadata of each op (descriptions, caps), which would take 100,000
    // ops over the message limit.
    let mut chain = definition(&chain_of_mkdirs(first, depth));
    chain.metadata.clear();
    let started = std::time::Instant::now();
    let error = solve_definition(&daemon, chain)
        .await
        .expect_err("the first op fails");
    eprintln!(
        "a chain of {depth} ops whose first fails: failed in {:.1?}",
        started.elapsed()
    );
    assert!(error.contains("/no/such/parent"), "{error}");
    solve(&daemon, &chain_of_mkdirs(scratch(), 3))
        .await
        .expect("the next build");
}

#[tokio::test]
async fn a_chain_of_10_000_ops_whose_first_fails_fails_clearly_and_the_daemon_goes_on() {
    a_failing_chain("hostile-llb-deep", 10_000).await;
}

/// The graph of 100,000 vertices (`bash bench/hostile-api.sh`).
#[tokio::test]
#[ignore = "a minute: run by bench/hostile-api.sh"]
async fn a_chain_of_100_000_ops_whose_first_fails_fails_clearly_and_the_daemon_goes_on() {
    a_failing_chain("hostile-llb-100k", 100_000).await;
}

/// The long run (`bash bench/hostile-api.sh`): 10,000 ops in a chain that all succeed until
/// the mount of layer 501, which fails naming overlayfs' bound, as on BuildKit.
#[tokio::test]
#[ignore = "minutes: run by bench/hostile-api.sh"]
async fn a_chain_of_10_000_ops_fails_at_the_layer_bound_and_the_daemon_goes_on() {
    let daemon = TestDaemon::start("hostile-llb-bound").await;
    let started = std::time::Instant::now();
    let error = solve(&daemon, &chain_of_mkdirs(scratch(), 10_000))
        .await
        .expect_err("deeper than overlayfs stacks");
    eprintln!(
        "a chain of 10,000 ops: failed at the layer bound in {:.1?}",
        started.elapsed()
    );
    assert!(error.contains("at most 500 layers"), "{error}");
    solve(&daemon, &chain_of_mkdirs(scratch(), 3))
        .await
        .expect("the next build");
}

/// A definition just under the gRPC message limit (16 MiB, as buildkitd's) builds; one over
/// it is refused naming the limit, and the daemon goes on serving.
#[tokio::test]
async fn definitions_at_and_over_the_message_limit() {
    let daemon = TestDaemon::start("hostile-llb-size").await;
    let file = |size: usize| {
        scratch().file(FileAction::new(Mkfile::new(
            "/big",
            0o644,
            vec![b'x'; size],
        )))
    };
    let limit = nodekit_proto::MAX_MESSAGE;
    solve(&daemon, &file(limit - 64 * 1024))
        .await
        .expect("a definition under the limit");
    let error = solve(&daemon, &file(limit + 1))
        .await
        .expect_err("a definition over the limit");
    assert!(
        error.contains("message length too large") && error.contains(&limit.to_string()),
        "{error}"
    );
    solve(&daemon, &chain_of_mkdirs(scratch(), 1))
        .await
        .expect("the next build");
}
