#!/usr/bin/env bash
# The project's test command (the one the README names and .ci/run runs).
# Needs only Go; everything else comes through the module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

# The status page is tested in headless Chromium (Debian's package); install
# it where we can (CI runs as root on Debian). Where we cannot, that one test
# skips and says why.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "== installing chromium for the status page test"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 ||
		(apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) ||
		echo "could not install chromium; the status page's browser test will skip"
fi

echo "== go vet"
go vet ./...

# Every package under the race detector. The randomized simulator is
# single-goroutine, so under -race it runs a reduced seed count there.
echo "== go test -race"
go test -race -count=1 ./...

# The full randomized safety run (RAFTTEST_SEEDS, default 2000) without the
# race detector, which would only slow a single-goroutine simulation down.
echo "== randomized simulation"
go test -count=1 -run 'TestRandomizedSafety' ./rafttest/

# The fault-injection suite's CI share: three scenarios (partitions,
# SIGKILL, pause) on 3 real counter processes, about 30 s of faults each,
# in a step of its own so the servers do not compete with the race run.
# The full matrix is `go run ./cmd/raftchaos` (see the README).
echo "== fault injection (3 scenarios)"
RAFTKIT_CHAOS=1 go test -count=1 -run 'TestScenariosCI' ./chaos/

# The benchmark module (its own go.mod: the peers it compares against never
# enter the library's dependencies): vet, its unit tests, and a smoke run of
# the harness on raftkit and the baseline. The full comparison is
# `cd bench && go run . run` (see the README).
echo "== bench (smoke)"
(cd bench && go vet ./... && go test -short -count=1 ./... &&
	go run . run -quick -systems raftkit,baseline -failover off -groups-cell off >/dev/null)
