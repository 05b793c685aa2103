package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shomei-pki/shomei/ca/store"
)

// TestDevSetupTwice runs the development set-up of `make run` twice over the
// same directory, as a developer does: the second run must keep the token,
// its PINs and the issuers, not make new ones.
func TestDevSetupTwice(t *testing.T) {
	script, err := filepath.Abs("../../deploy/dev/softhsm-token.sh")
	if err != nil {
		t.Fatal(err)
	}
	varDir := filepath.Join(t.TempDir(), "var")
	setup := func() {
		t.Helper()
		cmd := exec.Command("bash", script, varDir)
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF=") // the script makes its own
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("softhsm-token.sh: %v: %s", err, out)
		}
	}
	conf := filepath.Join(varDir, "shomei.yaml")

	setup()
	pin, err := os.ReadFile(filepath.Join(varDir, "hsm", "user.pin"))
	if err != nil || len(pin) < 16 {
		t.Fatalf("user PIN file: %v (%d bytes)", err, len(pin))
	}
	if fi, err := os.Stat(filepath.Join(varDir, "hsm", "user.pin")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("user PIN file mode: %v %v", fi.Mode(), err)
	}
	if r := run(t, "--config", conf, "init", "--existing-ok"); r.code != 0 || !strings.Contains(r.stdout, "Key ceremony complete") {
		t.Fatalf("first init: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	first := storedIssuers(t, filepath.Join(varDir, "shomei.db"))

	setup()
	again, err := os.ReadFile(filepath.Join(varDir, "hsm", "user.pin"))
	if err != nil || string(again) != string(pin) {
		t.Fatal("the second set-up changed the user PIN")
	}
	slots := exec.Command("softhsm2-util", "--show-slots")
	slots.Env = append(os.Environ(), "SOFTHSM2_CONF="+filepath.Join(varDir, "softhsm", "softhsm2.conf"))
	out, err := slots.CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util: %v: %s", err, out)
	}
	if n := strings.Count(string(out), "shomei-dev "); n != 1 {
		t.Fatalf("%d tokens labelled shomei-dev after two set-ups, want 1", n)
	}
	if r := run(t, "--config", conf, "init", "--existing-ok"); r.code != 0 || !strings.Contains(r.stdout, "nothing to do") {
		t.Fatalf("second init: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if again := storedIssuers(t, filepath.Join(varDir, "shomei.db")); again != first {
		t.Fatalf("issuers changed across set-ups:\nbefore:\n%s\nafter:\n%s", first, again)
	}
}

// storedIssuers describes the issuer keys recorded in the store file (the
// CA is not running: keys list would ask it).
func storedIssuers(t *testing.T, path string) string {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := st.Issuers()
	if err != nil || len(keys) != 2 {
		t.Fatalf("%d issuers in %s: %v", len(keys), path, err)
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s %x %x\n", k.KeyLabel, k.State, k.KeyId, k.CertificateDer)
	}
	return b.String()
}
