package softhsm

import (
	"os"
)

// PINs of the tokens NewTestEnv makes. They guard throwaway test tokens only.
const (
	TestPIN   = "1234-test"
	TestSOPIN = "so-5678-test"
)

// NewTestEnv makes a SoftHSM2 directory in a new temporary directory, points
// this process at it (SOFTHSM2_CONF) and initialises one token per label with
// TestPIN. SoftHSM2 reads its configuration once per process, so a test
// binary calls this once, from TestMain, for every token its tests use.
// cleanup removes the directory.
func NewTestEnv(labels ...string) (dir *Dir, cleanup func(), err error) {
	root, err := os.MkdirTemp("", "shomei-softhsm-")
	if err != nil {
		return nil, nil, err
	}
	cleanup = func() { os.RemoveAll(root) }
	dir, err = NewDir(root)
	if err == nil {
		err = dir.Setenv()
	}
	for _, label := range labels {
		if err != nil {
			break
		}
		err = dir.InitToken(label, TestSOPIN, TestPIN)
	}
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return dir, cleanup, nil
}
