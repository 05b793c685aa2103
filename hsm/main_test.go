package hsm

import (
	"os"
	"testing"

	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// The tests run against real SoftHSM2 tokens in a throwaway directory, all
// created here before any test opens one (SoftHSM2 reads its configuration
// once per process).
const (
	testPIN = softhsm.TestPIN

	labelMain    = "hsm-test"   // shared by most tests
	labelPIN     = "hsm-pin"    // wrong-PIN test: its own, never logged in
	labelRemote  = "hsm-remote" // behind a p11-kit server
	labelBench   = "hsm-bench"  // benchmarks
	labelPool    = "hsm-pool"   // pool exhaustion
	labelCerts   = "hsm-certs"  // key against certificate checks
	labelShared  = "hsm-shared" // two Tokens on one token
	labelOther   = "hsm-other"  // a second token on the same module
	labelFaults  = "hsm-faults" // Tokens with injected faults
	labelDup     = "hsm-dup"    // carried by two tokens
	labelUnknown = "no-such-token"
)

var testDir *softhsm.Dir

func TestMain(m *testing.M) {
	labels := []string{labelMain, labelPIN, labelRemote, labelBench, labelPool, labelCerts,
		labelShared, labelOther, labelFaults, labelDup, labelDup}
	os.Exit(testenv.Main(m, "hsm tests", labels, func(dir *softhsm.Dir) error {
		testDir = dir
		return nil
	}))
}
