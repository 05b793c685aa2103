package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/internal/testenv"
)

// TestAttackSecretFiles: issue 9 item 12. A PIN file, a client token file,
// a TLS private key or a store file that its group or others may read, or
// a store directory others may write, stops every binary that reads it at
// start, with the path named, before it serves anything.
func TestAttackSecretFiles(t *testing.T) {
	type setup struct {
		dir, conf string
	}
	caConfig := func(t *testing.T, extra string) setup {
		dir := t.TempDir()
		writeServerCert(t, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
		writeToken(t, dir, "kiyose.token", kiyoseToken)
		return setup{dir, writeConfig(t, dir, "e2e-auth", extra)}
	}
	withClient := `clients:
  - name: kiyose
    token_file: kiyose.token
    municipalities: ["13221"]
`
	withTLS := `  tls:
    cert_file: server.pem
    key_file: server-key.pem
`
	replicaConfig := func(t *testing.T) setup {
		dir := t.TempDir()
		token, err := testenv.Token(testDir, "e2e-auth")
		if err != nil {
			t.Fatal(err)
		}
		writeToken(t, dir, "replica.token", "replica-secret-token-0123456789")
		if err := testenv.WritePIN(dir); err != nil {
			t.Fatal(err)
		}
		conf, err := testenv.WriteFile(dir, "replica.yaml", testenv.Replica{Name: "secrets", CAAddress: "127.0.0.1:1",
			CA: "  token_file: replica.token\n", HSM: token}.YAML())
		if err != nil {
			t.Fatal(err)
		}
		return setup{dir, conf}
	}
	chmod := func(t *testing.T, path string, mode os.FileMode) string {
		if mode&0o777 == 0o777 {
			if err := os.MkdirAll(path, 0o700); err != nil {
				t.Fatal(err)
			}
		} else if _, err := os.Stat(path); err != nil {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		name   string
		binary string
		args   []string
		make   func(t *testing.T) (conf, exposed string)
	}{
		{"shomei-ca PIN file", "shomei-ca", nil, func(t *testing.T) (string, string) {
			s := caConfig(t, "")
			return s.conf, chmod(t, filepath.Join(s.dir, "pin"), 0o644)
		}},
		{"shomei-ca client token file", "shomei-ca", nil, func(t *testing.T) (string, string) {
			s := caConfig(t, withClient)
			return s.conf, chmod(t, filepath.Join(s.dir, "kiyose.token"), 0o640)
		}},
		{"shomei-ca TLS key", "shomei-ca", nil, func(t *testing.T) (string, string) {
			s := caConfig(t, withTLS)
			return s.conf, chmod(t, filepath.Join(s.dir, "server-key.pem"), 0o604)
		}},
		{"shomei-ca store file", "shomei-ca", nil, func(t *testing.T) (string, string) {
			s := caConfig(t, "")
			return s.conf, chmod(t, filepath.Join(s.dir, "shomei.db"), 0o644)
		}},
		{"shomei-ca store directory", "shomei-ca", nil, func(t *testing.T) (string, string) {
			s := caConfig(t, "")
			conf, err := os.ReadFile(s.conf)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.conf, []byte(strings.Replace(string(conf), "path: shomei.db", "path: shared/shomei.db", 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			return s.conf, chmod(t, filepath.Join(s.dir, "shared"), 0o777)
		}},
		{"shomeictl store file", "shomeictl", []string{"audit", "verify", "--offline"}, func(t *testing.T) (string, string) {
			s := caConfig(t, "")
			return s.conf, chmod(t, filepath.Join(s.dir, "shomei.db"), 0o644)
		}},
		{"shomeictl client token file", "shomeictl", []string{"events", "import", "--addr", "127.0.0.1:1", "--token-file", "TOKEN", "-"},
			func(t *testing.T) (string, string) {
				s := caConfig(t, "")
				return s.conf, chmod(t, filepath.Join(s.dir, "kiyose.token"), 0o644)
			}},
		{"shomei-ocsp PIN file", "shomei-ocsp", nil, func(t *testing.T) (string, string) {
			s := replicaConfig(t)
			return s.conf, chmod(t, filepath.Join(s.dir, "pin"), 0o640)
		}},
		{"shomei-ocsp store file", "shomei-ocsp", nil, func(t *testing.T) (string, string) {
			s := replicaConfig(t)
			return s.conf, chmod(t, filepath.Join(s.dir, "replica.db"), 0o664)
		}},
		{"shomei-ocsp client token file", "shomei-ocsp", nil, func(t *testing.T) (string, string) {
			s := replicaConfig(t)
			return s.conf, chmod(t, filepath.Join(s.dir, "replica.token"), 0o644)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conf, exposed := tc.make(t)
			args := []string{"--config", conf}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "TOKEN", exposed))
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, tc.binary), args...)
			cmd.Stdin = strings.NewReader("")
			out, err := cmd.CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("%s started with %s exposed: %v\n%s", tc.binary, exposed, err, out)
			}
			if !strings.Contains(string(out), exposed) || !strings.Contains(string(out), "group or others may") {
				t.Errorf("%s's refusal does not name %s:\n%s", tc.binary, exposed, out)
			}
			if strings.Contains(string(out), "listening") {
				t.Errorf("%s listened before refusing:\n%s", tc.binary, out)
			}
		})
	}
}
