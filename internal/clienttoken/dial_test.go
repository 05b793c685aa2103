package clienttoken

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDialRefusals(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("client-token-0123456789\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[Dial]string{
		{CertFile: "c.pem"}:                        "both its certificate and its key",
		{CertFile: "c.pem", KeyFile: "k.pem"}:      "only sent over TLS",
		{TokenFile: token}:                         "chmod 600",
		{TokenFile: filepath.Join(dir, "missing")}: "no such file",
	} {
		if _, err := d.Options(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", d, err, want)
		}
	}
	if err := os.Chmod(token, 0o600); err != nil {
		t.Fatal(err)
	}
	if opts, err := (Dial{TokenFile: token}).Options(); err != nil || len(opts) != 2 {
		t.Errorf("a private token file: %d options, %v", len(opts), err)
	}
}
