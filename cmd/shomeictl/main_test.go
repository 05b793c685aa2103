package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// These tests run the real shomeictl binary, as an operator would, against a
// real SoftHSM2 token and a real bbolt file.

var (
	binary  string
	testDir *softhsm.Dir
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "shomeictl tests", []string{"ctl-main", "ctl-pin"}, func(dir *softhsm.Dir) error {
		testDir = dir
		binary = filepath.Join(dir.Root, "shomeictl")
		return testenv.Build(dir.Root, ".")
	}))
}

// writeConfig writes a configuration for token label with the given PIN and
// returns its path.
func writeConfig(t *testing.T, label, pin string) string {
	t.Helper()
	token, err := testenv.Token(testDir, label)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := testenv.WriteFile(dir, testenv.PINFile, pin+"\n"); err != nil {
		t.Fatal(err)
	}
	path, err := testenv.WriteFile(dir, "shomei.yaml", "store:\n  path: shomei.db\n"+token.YAML())
	if err != nil {
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
	return runWith(t, nil, append(os.Environ(), "SHOMEI_CONFIG="), args...) // only --config counts here
}

// runWith runs shomeictl with stdin (nil for none) and the environment env
// (nil for this process's).
func runWith(t *testing.T, stdin *os.File, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	cmd.Env = env
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

	r := run(t, "--config", conf, "init", "--operator", "ci-operator")
	if r.code != 0 {
		t.Fatalf("init: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "Key ceremony complete: 2 issuers recorded") {
		t.Errorf("init output:\n%s", r.stdout)
	}
	// The issuers it made (keys list asks the running CA:
	// TestKeysAndIssuersFromTheCA).
	var lines []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "sign ") || strings.HasPrefix(l, "auth ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("init lists %d issuers:\n%s", len(lines), r.stdout)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		// ISSUER GEN STATE ALGORITHM LABEL ID SKI NOT-BEFORE NOT-AFTER
		if len(f) != 9 || f[1] != "1" || f[2] != "ACTIVE" || f[3] != "rsa2048" {
			t.Errorf("init's issuer line %q", l)
		}
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

	r = run(t, "--config", conf, "audit", "verify", "--offline")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "audit log intact: 5 records, 1 signed checkpoints (last covers record 5)") ||
		!strings.Contains(r.stdout, "the HSM witnessed record 5") {
		t.Errorf("audit verify: code %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, "--config", conf, "audit", "export", "--offline")
	if r.code != 0 || !strings.Contains(r.stdout, `"actor":"ci-operator","action":"issuer.key.generate","fields":[{"key":"profile","value":"sign"},{"key":"generation","value":"1"}`) {
		t.Errorf("audit export --offline: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "--config", conf, "audit", "list", "--offline")
	if r.code != 0 || !strings.Contains(r.stdout, "\tci-operator\tissuer.key.generate profile=sign generation=1 ") || strings.Count(r.stdout, "\n") != 5 {
		t.Errorf("audit list --offline: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "--config", conf, "audit", "list", "--offline", "--since", "yesterday")
	if r.code == 0 || !strings.Contains(r.stderr, `--since "yesterday": want RFC 3339`) {
		t.Errorf("audit list --since yesterday: code %d\n%s%s", r.code, r.stdout, r.stderr)
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
			return []string{"--config", filepath.Join(t.TempDir(), "none.yaml"), "init"}
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
		{}, {"init"}, {"keys"}, {"keys", "list"}, {"issuers"}, {"issuers", "export"}, {"audit"}, {"audit", "verify"}, {"audit", "export"}, {"audit", "list"}, {"backup"}, {"backup", "verify"}, {"backup", "restore"}, {"notices"}, {"responders"},
	} {
		t.Run(strings.Join(append([]string{"shomeictl"}, args...), " "), func(t *testing.T) {
			r := run(t, append(args, "--help")...)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
				t.Fatalf("--help: code %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}
