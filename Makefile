# Shomei: `make run` starts it on the development HSM, `make test` tests it.
# Both install the system packages they need (deploy/dev/deps.sh).

GO      ?= go
VAR     ?= $(CURDIR)/var
BIN     := $(CURDIR)/bin
CONFIG  := $(VAR)/shomei.yaml
BUF     := GOWORK=off $(GO) tool -modfile=internal/tools/go.mod buf

.PHONY: all deps dev-hsm build run run-ocsp test fuzz-short vet lint proto proto-check bench clean config-docs

all: build

deps:
	@bash deploy/dev/deps.sh

# A throwaway SoftHSM2 token and configuration under ./var/.
dev-hsm: deps
	@bash deploy/dev/softhsm-token.sh $(VAR)

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# grpcurl, pinned in internal/tools, for the README's walk-through.
$(BIN)/grpcurl: internal/tools/go.mod
	GOWORK=off $(GO) build -modfile=internal/tools/go.mod -o $(BIN)/grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl

# The whole service on the development HSM: key ceremony on the first run
# (shomeictl init; shomei-ca refuses a store without issuers), then
# shomei-ca in the foreground (gRPC 127.0.0.1:8443, HTTP 127.0.0.1:8080)
# until Ctrl-C. `shomeictl keys list` and `issuers export` ask the running
# CA.
run: dev-hsm build $(BIN)/grpcurl
	$(BIN)/shomeictl --config $(CONFIG) init --existing-ok
	$(BIN)/shomeictl --config $(CONFIG) audit verify --offline
	exec $(BIN)/shomei-ca --config $(CONFIG)

# An OCSP replica of the running `make run` CA (start that first, in another
# terminal): follows it over gRPC, answers on http://127.0.0.1:8081/ocsp.
run-ocsp: dev-hsm build
	exec $(BIN)/shomei-ocsp --config $(VAR)/shomei-ocsp.yaml

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

lint:
	$(BUF) lint

# Regenerate Go code from api/**/*.proto.
proto:
	$(BUF) generate

# docs/configuration.md from the config structs' doc comments
# (internal/configdoc); go test ./internal/configdoc fails when it is stale.
config-docs:
	$(GO) run ./internal/configdoc/gen

# buf lint, and generated code in sync with the protos.
proto-check:
	@bash .ci/proto-check.sh

test: deps vet proto-check
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory fuzz-short

# The gRPC end-to-end tests again with every CA store on PostgreSQL: each
# test binary starts a throwaway cluster of Debian's postgresql (as the
# postgres user, on a Unix socket in a temporary directory) and stops it
# (internal/testenv/pg). The storage contract suite (ca/store), the engine
# tests and the two-CA tests run on PostgreSQL in the pass above already.
# Left out here: tests of the bbolt file itself (tampering with it, its
# path, its permissions), and the slow ones that do not touch the store.
PG_E2E = TestIssueRenewList|TestRevocationReachesOCSPAndTheCRL|TestOCSPReplica|TestIssuerCompromise|TestKeyRotationUnderLoad|TestGenerationsLive|TestBackupRestoreUnderIssuance|TestNoticesCSV|TestAttackEvent|TestAttackGRPCAuth|TestAttackOperatorRoles|TestAttackRevokeEffectiveTimeOutOfDomain|TestGRPCTLS|TestCRLShards|TestMetricsAfterWalkthrough|TestReplicaAcrossCARestart
test-postgres: deps
	SHOMEI_TEST_STORE=postgres $(GO) test -count=1 -timeout 20m ./ca ./ca/service ./ca/ops ./ca/issuer ./cmd/shomeictl
	SHOMEI_TEST_STORE=postgres $(GO) test -count=1 -timeout 20m -run '^($(PG_E2E))$$' ./cmd/shomei-ca

# The parsers of untrusted bytes (OCSP requests, event feeds, card CSRs,
# configuration files), fuzzed briefly on every run (the seeds, and the
# corpora under testdata/fuzz/, also run in `go test`). Each gets a count of
# executions, about 8 s' worth here: with a duration, Go 1.26's fuzzing
# coordinator can fail a target with "context deadline exceeded" as the
# time runs out, a race of its own, not a finding (golang/go#75804, fixed
# in Go 1.27). FUZZTIME=10m fuzzes every target for that long instead.
FUZZTIME ?=
fuzz-short:
	$(GO) test -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime $(or $(FUZZTIME),60000x) ./ocsp
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(or $(FUZZTIME),50000x) ./internal/eventfeed
	$(GO) test -run '^$$' -fuzz '^FuzzParseCSR$$' -fuzztime $(or $(FUZZTIME),100000x) ./ca
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(or $(FUZZTIME),20000x) ./internal/config

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 3s ./hsm/

clean:
	rm -rf $(BIN)

# OCSP responses/s: Shomei's responder (cached, and freshly signed) against
# `openssl ocsp` serving the same 100k-certificate index and a bare net/http
# ceiling, in one run (docs/benchmarks.md). shomei-bench re-executes itself
# under `unshare -n`: openssl listens on every interface, so everything runs
# in a network namespace with only loopback. Flags: BENCH_OCSP_FLAGS, e.g.
# BENCH_OCSP_FLAGS='--duration 10s --out var/bench-ocsp.md'.
BENCH_OCSP_FLAGS ?=
# CRL shards through a real store, bbolt and PostgreSQL (crl/doc.go,
# Cost): a municipality's 1,000,000 revoked certificates in ten shards of
# 100,000 rebuilt, and one revocation republishing its shard.
# CRL_SHARDS=150 rebuilds the 15,000,000 entries of a 200 M population
# (minutes of loading, 3 GB of disk per engine).
CRL_SHARDS ?= 10
bench-crl-shards: deps
	$(GO) test -run '^$$' -bench 'ShardSet|ShardRevocation' -benchtime 3x -timeout 180m ./crl -args -crl.shards $(CRL_SHARDS)

.PHONY: bench-ocsp bench-crl-shards test-postgres
bench-ocsp: deps
	@command -v ip >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 || { \
	  echo "bench-ocsp: installing iproute2 util-linux" >&2; \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends iproute2 util-linux >/dev/null; }
	$(GO) build -o $(BIN)/ ./cmd/shomei-bench
	$(BIN)/shomei-bench ocsp $(BENCH_OCSP_FLAGS)

# OCSP for every certificate (issue 12): N certificate records (default
# 100,000, 10% revoked) written into a CA store, all pre-signed by the
# responder's pre-signer (time, HSM signatures, memory, disk per million),
# then queries spread uniformly over all N against a hot set of 10,000, with
# the HSM signatures made during each cell (docs/benchmarks.md). Flags:
# BENCH_PRESIGN_FLAGS, e.g. '--certs 1000000 --out var/bench-presign.md'.
BENCH_PRESIGN_FLAGS ?=
.PHONY: bench-presign
bench-presign: deps
	$(GO) build -o $(BIN)/ ./cmd/shomei-bench
	$(BIN)/shomei-bench presign $(BENCH_PRESIGN_FLAGS)

# A good client issuing and querying OCSP while garbage and oversized OCSP,
# nonce floods, unauthenticated 4 MiB gRPC messages, slow bodies and 20,000
# idle connections hit a real shomei-ca for 60 s (docs/benchmarks.md); exit
# status 1 if the good client saw a failure or the CA's peak RSS passed the
# bound. Flags: BENCH_HOSTILE_FLAGS, e.g. '--out var/bench-hostile.md'.
BENCH_HOSTILE_FLAGS ?=
.PHONY: bench-hostile
bench-hostile: deps
	$(GO) build -o $(BIN)/ ./cmd/shomei-ca ./cmd/shomei-bench
	$(BIN)/shomei-bench hostile $(BENCH_HOSTILE_FLAGS)

# Issuance at scale (issue 12): a real shomei-ca on bbolt and on a throwaway
# PostgreSQL cluster, with 0 and 100,000 synthetic certificates preloaded
# (the store's own write path, with their audit records): certificates/s,
# the CA's start-up, the store on disk, the CA's CPU per certificate beside
# one HSM signature's, and 100 address-change events/s for 60 s under
# issuance (event → OCSP, → CRL). Flags: BENCH_SCALE_FLAGS, e.g.
# BENCH_SCALE_FLAGS='--preload 0,1000000,10000000 --out var/bench-scale.md'.
BENCH_SCALE_FLAGS ?=
.PHONY: bench-scale
bench-scale: deps
	$(GO) build -o $(BIN)/ ./cmd/shomei-ca ./cmd/shomei-bench
	$(BIN)/shomei-bench scale $(BENCH_SCALE_FLAGS)
