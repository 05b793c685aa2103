package service_test

import (
	"os"
	"testing"

	"github.com/shomei-pki/shomei/internal/testenv"
)

// Every test function runs its own CA on a token of its own: the key
// ceremony refuses a token that already holds issuer keys, and a CA of its
// own gives each test its own clock, so the tests run in parallel.
// SoftHSM2 reads its configuration once per process, so every token is
// made here, before any test opens one.
const (
	tokenApplicant  = "rules-applicant"
	tokenInquiry    = "rules-inquiry"
	tokenAge        = "rules-age"
	tokenDouble     = "rules-double"
	tokenTogether   = "rules-together"
	tokenKeys       = "rules-keys"
	tokenKeysP256   = "rules-keys-p256"
	tokenValidity   = "rules-validity"
	tokenRenewal    = "rules-renewal"
	tokenCharacters = "rules-characters"
	tokenLookup     = "rules-lookup"
	tokenEvents     = "rules-events"
	tokenReplicate  = "rules-replication"
	tokenSizes      = "attack-sizes"
	tokenCertSize   = "attack-cert-size"
	tokenMaxRequest = "attack-max-request"
	tokenResponders = "rules-responders"
	tokenShards     = "rules-crl-shards"
)

var tokens = []string{
	tokenApplicant, tokenInquiry, tokenAge, tokenDouble, tokenTogether, tokenKeys,
	tokenKeysP256, tokenValidity, tokenRenewal, tokenCharacters, tokenLookup, tokenEvents,
	tokenReplicate, tokenSizes, tokenCertSize, tokenMaxRequest, tokenResponders, tokenShards,
}

func TestMain(m *testing.M) {
	// Card keys take a while to generate: start now, while the tokens are
	// being initialised.
	holderKeys.fill(24)
	os.Exit(testenv.Main(m, "service tests", tokens, nil))
}
