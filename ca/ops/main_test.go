package ops_test

import (
	"os"
	"testing"

	"github.com/shomei-pki/shomei/internal/testenv"
)

// tokens are the SoftHSM2 tokens of this package's tests, made before any
// test runs (SoftHSM2 reads its configuration once per process).
var tokens = []string{keysToken}

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "ops tests", tokens, nil))
}
