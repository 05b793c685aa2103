package open_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/open"
)

const label = "open-test"

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "open tests", []string{label}, nil))
}

// Token is logged in (it makes a key), and closing it before the test
// ends is allowed.
func TestToken(t *testing.T) {
	tok := open.Token(t, label)
	if _, err := tok.GenerateKey(context.Background(), hsm.KeyRef{Label: "open-test-key", ID: []byte{1}}, hsm.ECDSAP256); err != nil {
		t.Fatalf("the opened token does not make a key: %v", err)
	}
	if err := tok.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := open.TokenPool("no-such-token", 1); err == nil {
		t.Error("TokenPool opened a token that was never made")
	}
}

// Store is a new, empty, writable store in the test's directory, and
// each call gets its own.
func TestStore(t *testing.T) {
	a, b := open.Store(t), open.Store(t)
	if a.Path() == b.Path() || filepath.Base(a.Path()) != "shomei.db" {
		t.Errorf("stores at %s and %s", a.Path(), b.Path())
	}
	if err := a.AppendAudit(&storev1.AuditRecord{Actor: "test", Action: "test.record"}); err != nil {
		t.Fatalf("the opened store does not take a record: %v", err)
	}
	n := 0
	if err := b.AuditRecords(func(*storev1.AuditRecord) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("the other store holds %d records (%v), want none", n, err)
	}
}
