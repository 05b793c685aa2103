#!/usr/bin/env bash
# proto-check.sh: lint the protos and check that the generated Go code in api/
# is what `buf generate` produces from them.
#
# buf and protoc-gen-go are the versions pinned in internal/tools/go.mod and
# are built through the Go module proxy by `go tool`; nothing else is fetched.
# The first run builds buf (about a minute and a half on a cold build cache).
set -euo pipefail

cd "$(dirname "$0")/.."

# -modfile does not work in workspace mode; the tools module stands alone.
export GOWORK=off

buf() {
	go tool -modfile=internal/tools/go.mod buf "$@"
}

echo "proto-check: buf lint"
buf lint

echo "proto-check: buf generate"
buf generate

# Drift: generated files that differ from the commit, or new generated files
# that were never committed.
if ! git rev-parse --verify --quiet HEAD >/dev/null; then
	echo "proto-check: no commit yet; skipping the drift check" >&2
	exit 0
fi
drift=$(git status --porcelain -- api/)
if [[ -n "$drift" ]]; then
	echo "proto-check: generated code in api/ is out of date with the .proto files:" >&2
	echo "$drift" >&2
	git --no-pager diff --stat -- api/ >&2 || true
	echo "proto-check: run 'go tool -modfile=internal/tools/go.mod buf generate' and commit the result." >&2
	exit 1
fi
echo "proto-check: ok"
