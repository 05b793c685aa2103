# Shomei: `make run` starts it on the development HSM, `make test` tests it.
# Both install the system packages they need (deploy/dev/deps.sh).

GO      ?= go
VAR     ?= $(CURDIR)/var
BIN     := $(CURDIR)/bin
CONFIG  := $(VAR)/shomei.yaml
BUF     := GOWORK=off $(GO) tool -modfile=internal/tools/go.mod buf

.PHONY: all deps dev-hsm build run test vet lint proto proto-check bench clean

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

# The whole service on the development HSM: key ceremony on the first run,
# issuer certificates exported to var/issuers/, then shomei-ca in the
# foreground (gRPC 127.0.0.1:8443, HTTP 127.0.0.1:8080) until Ctrl-C.
run: dev-hsm build $(BIN)/grpcurl
	$(BIN)/shomeictl --config $(CONFIG) init --existing-ok
	$(BIN)/shomeictl --config $(CONFIG) keys list --verify
	$(BIN)/shomeictl --config $(CONFIG) issuers export --out $(VAR)/issuers
	$(BIN)/shomeictl --config $(CONFIG) audit verify
	exec $(BIN)/shomei-ca --config $(CONFIG)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

lint:
	$(BUF) lint

# Regenerate Go code from api/**/*.proto.
proto:
	$(BUF) generate

# buf lint, and generated code in sync with the protos.
proto-check:
	@bash .ci/proto-check.sh

test: deps vet proto-check
	$(GO) test -race -count=1 ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 3s ./hsm/

clean:
	rm -rf $(BIN)
