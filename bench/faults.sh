#!/usr/bin/env bash
# containerd restarted at random moments while nodekitd builds, ROUNDS times in a row (default
# 50): each round runs 3 builds at once (a cached one, a RUN that sleeps, one exporting an image)
# and restarts a private containerd of the test's own (never the test environment's) within
# 1.5 s. Every build must succeed or fail naming containerd and its socket; after each round the
# next builds (cached and not) succeed and no container of nodekit's is left; nodekitd is never
# restarted. Prints the rounds, the builds that succeeded and failed, and the time taken.
# The normal suite runs 3 rounds (tests/faults, random_restarts). Not part of CI's run.
#   bash bench/faults.sh [ROUNDS]
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
ROUNDS=${1:-50}
[[ $ROUNDS =~ ^[0-9]+$ ]] || { echo "usage: $0 [ROUNDS]" >&2; exit 2; }

# Only the base image's archive is needed from the test environment (the test brings it up
# when it is not): no bench_env, whose up.sh clears nodekit's leftovers from the shared
# containerd, where other runs may be building.
cd "$REPO"
NODEKIT_FAULTS_RESTARTS=$ROUNDS cargo test -q -p nodekit-tests --test faults \
	containerd_restarted_at_random_moments_during_builds -- --nocapture 2>&1 |
	grep -E 'rounds of|test result|panicked|FAILED'
