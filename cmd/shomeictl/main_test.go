package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shomei-pki/shomei/internal/softhsm"
)

// These tests run the real shomeictl binary, as an operator would, against a
// real SoftHSM2 token and a real bbolt file.

var (
	binary  string
	testDir *softhsm.Dir
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "shomeictl tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, cleanup, err := softhsm.NewTestEnv("ctl-main", "ctl-pin")
	if err != nil {
		return 0, err
	}
	defer cleanup()
	testDir = dir
	binary = filepath.Join(dir.Root, "shomeictl")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building shomeictl: %v: %s", err, out)
	}
	return m.Run(), nil
}

// writeConfig writes a configuration for token label with the given PIN and
// returns its path.
func writeConfig(t *testing.T, label, pin string) string {
	t.Helper()
	mod, err := softhsm.Module()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pin"), []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`store:
  path: shomei.db
hsm:
  module: %s
  module_env:
    SOFTHSM2_CONF: %s
  token_label: %s
  pin_file: pin
`, mod, testDir.Conf, label)
	path := filepath.Join(dir, "shomei.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "SHOMEI_CONFIG=") // only --config counts here
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func TestOperatorWorkflow(t *testing.T) {
	conf := writeConfig(t, "ctl-main", softhsm.TestPIN)

	r := run(t, "--config", conf, "keys", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "has no issuers yet: run `shomeictl init`") {
		t.Fatalf("keys list before init: code %d, stderr %q", r.code, r.stderr)
	}

	r = run(t, "--config", conf, "init", "--operator", "ci-operator")
	if r.code != 0 {
		t.Fatalf("init: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "Key ceremony complete: 2 issuers recorded") {
		t.Errorf("init output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "generating issuer key in the HSM") {
		t.Errorf("init shows no progress on stderr:\n%s", r.stderr)
	}

	r = run(t, "--config", conf, "init")
	if r.code == 0 || !strings.Contains(r.stderr, "already has its issuers") {
		t.Fatalf("second init: code %d, stderr %q", r.code, r.stderr)
	}
	r = run(t, "--config", conf, "init", "--existing-ok")
	if r.code != 0 || !strings.Contains(r.stdout, "nothing to do") {
		t.Fatalf("init --existing-ok: code %d, %q %q", r.code, r.stdout, r.stderr)
	}

	r = run(t, "--config", conf, "keys", "list", "--verify")
	if r.code != 0 {
		t.Fatalf("keys list --verify: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "sign ") || !strings.HasPrefix(lines[2], "auth ") {
		t.Fatalf("keys list:\n%s", r.stdout)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		// ISSUER GEN STATE ALGORITHM LABEL ID SKI NOT-BEFORE NOT-AFTER HSM
		if len(f) != 10 || f[1] != "1" || f[2] != "ACTIVE" || f[3] != "rsa2048" || f[9] != "ok" {
			t.Errorf("keys list line %q", l)
		}
	}

	r = run(t, "--config", conf, "audit", "verify")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "audit log intact: 5 records, 1 signed checkpoints (last covers record 5)") ||
		!strings.Contains(r.stdout, "the HSM witnessed record 5") {
		t.Errorf("audit verify: code %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, "--config", conf, "audit", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "\tci-operator\tissuer.key.generate\tprofile=sign generation=1") {
		t.Errorf("audit list: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	out := filepath.Join(t.TempDir(), "export")
	r = run(t, "--config", conf, "issuers", "export", "--out", out)
	if r.code != 0 {
		t.Fatalf("issuers export: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, name := range []string{"shomei-sign-g1.pem", "shomei-auth-g1.pem"} {
		pem := filepath.Join(out, name)
		v, err := exec.Command("openssl", "verify", "-CAfile", pem, pem).CombinedOutput()
		if err != nil || !strings.Contains(string(v), ": OK") {
			t.Errorf("openssl verify %s: %v %s", name, err, v)
		}
	}
	subj, err := exec.Command("openssl", "x509", "-in", filepath.Join(out, "shomei-auth-g1.pem"), "-noout", "-subject").CombinedOutput()
	if err != nil || strings.TrimSpace(string(subj)) != "subject=C = JP, O = JPKI, OU = JPKI for user authentication, OU = Japan Agency for Local Authority Information Systems" {
		t.Errorf("openssl x509 -subject: %v %s", err, subj)
	}
	bundle, err := os.ReadFile(filepath.Join(out, "issuers.pem"))
	if err != nil || bytes.Count(bundle, []byte("BEGIN CERTIFICATE")) != 2 {
		t.Errorf("issuers.pem: %v, %d certificates", err, bytes.Count(bundle, []byte("BEGIN CERTIFICATE")))
	}
}

func TestOperatorErrors(t *testing.T) {
	cases := []struct {
		name string
		args func(t *testing.T) []string
		want string
	}{
		{"wrong PIN", func(t *testing.T) []string {
			return []string{"--config", writeConfig(t, "ctl-pin", "wrong-pin"), "init"}
		}, "the PIN is wrong"},
		{"missing token", func(t *testing.T) []string {
			return []string{"--config", writeConfig(t, "ctl-absent", softhsm.TestPIN), "init"}
		}, `no token with that label "ctl-absent"`},
		{"no PIN flag exists", func(t *testing.T) []string {
			return []string{"--config", writeConfig(t, "ctl-pin", softhsm.TestPIN), "init", "--pin", "1234"}
		}, "unknown flag: --pin"},
		{"missing config", func(t *testing.T) []string {
			return []string{"--config", filepath.Join(t.TempDir(), "none.yaml"), "keys", "list"}
		}, "no such file or directory"},
		{"export needs --out", func(t *testing.T) []string {
			return []string{"--config", writeConfig(t, "ctl-pin", softhsm.TestPIN), "issuers", "export"}
		}, "--out DIR is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args(t)...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("code %d, stderr %q; want failure saying %q", r.code, r.stderr, tc.want)
			}
		})
	}
}

func TestHelpEverywhere(t *testing.T) {
	for _, args := range [][]string{
		{}, {"init"}, {"keys"}, {"keys", "list"}, {"issuers"}, {"issuers", "export"}, {"audit"}, {"audit", "verify"}, {"audit", "list"},
	} {
		t.Run(strings.Join(append([]string{"shomeictl"}, args...), " "), func(t *testing.T) {
			r := run(t, append(args, "--help")...)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
				t.Fatalf("--help: code %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}
