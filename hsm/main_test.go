package hsm

import (
	"fmt"
	"os"
	"testing"

	"github.com/shomei-pki/shomei/internal/softhsm"
)

// The tests run against real SoftHSM2 tokens in a throwaway directory. SoftHSM2
// reads its configuration when the module is first initialised, so every
// token the tests use is created here, before any test opens one.
const (
	testPIN   = "1234-test"
	testSOPIN = "so-5678-test"

	labelMain    = "hsm-test"   // shared by most tests
	labelPIN     = "hsm-pin"    // wrong-PIN test: its own, never logged in
	labelRemote  = "hsm-remote" // behind a p11-kit server
	labelBench   = "hsm-bench"  // benchmarks
	labelPool    = "hsm-pool"   // pool exhaustion
	labelCerts   = "hsm-certs"  // key against certificate checks
	labelEmpty   = "hsm-empty"  // no keys at all
	labelUnknown = "no-such-token"
)

var testDir *softhsm.Dir

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hsm tests: setting up SoftHSM2:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	root, err := os.MkdirTemp("", "shomei-hsm-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	testDir, err = softhsm.NewDir(root)
	if err != nil {
		return 0, err
	}
	if err := testDir.Setenv(); err != nil {
		return 0, err
	}
	for _, label := range []string{labelMain, labelPIN, labelRemote, labelBench, labelPool, labelCerts, labelEmpty} {
		if err := testDir.InitToken(label, testSOPIN, testPIN); err != nil {
			return 0, err
		}
	}
	return m.Run(), nil
}
