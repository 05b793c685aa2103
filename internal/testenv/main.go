package testenv

import (
	"fmt"
	"os"
	"testing"

	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

// Main is the body of the TestMain of a test binary whose tests use
// SoftHSM2 tokens. SoftHSM2 reads its configuration once per process, so
// every token is made here, one per label (softhsm.NewTestEnv), before any
// test opens one. Main then calls prepare, if not nil, with the tokens'
// directory (to keep it, or to build binaries into it), runs the tests,
// removes the directory, stops the shared PostgreSQL cluster if a test
// started one (pg.Database), and returns the exit code for os.Exit. A failure
// to set up is printed to standard error after name and gives 1.
func Main(m *testing.M, name string, labels []string, prepare func(*softhsm.Dir) error) int {
	dir, cleanup, err := softhsm.NewTestEnv(labels...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: setting up SoftHSM2: %v\n", name, err)
		return 1
	}
	defer cleanup()
	if prepare != nil {
		if err := prepare(dir); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			return 1
		}
	}
	defer func() {
		if err := pg.StopShared(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		}
	}()
	return m.Run()
}
