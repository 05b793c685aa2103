package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// keys list and issuers export ask the running CA (shomei-ca, real
// SoftHSM2 token, gRPC over TCP), not the store file it holds locked.
func TestKeysAndIssuersFromTheCA(t *testing.T) {
	dir := t.TempDir()
	ca := startCA(t, dir, "ctl-keys", "")
	conn := []string{"--ca", ca.grpc, "--operator", "alice"}

	r := run(t, append([]string{"keys", "list"}, conn...)...)
	if r.code != 0 {
		t.Fatalf("keys list: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ISSUER ") || !strings.HasPrefix(lines[1], "sign ") || !strings.HasPrefix(lines[2], "auth ") {
		t.Fatalf("keys list:\n%s", r.stdout)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		// ISSUER GEN STATE ALGORITHM LABEL ID SKI NOT-BEFORE NOT-AFTER UNEXPIRED LAST-EXPIRY
		if len(f) != 11 || f[1] != "1" || f[2] != "ACTIVE" || f[3] != "rsa2048" || f[4] != "shomei-"+f[0]+"-g1" || f[9] != "0" || f[10] != "-" {
			t.Errorf("keys list line %q", l)
		}
	}

	out := filepath.Join(dir, "export")
	r = run(t, append([]string{"issuers", "export", "--out", out}, conn...)...)
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
	if links, err := os.ReadFile(filepath.Join(out, "links.pem")); err != nil || len(links) != 0 {
		t.Errorf("links.pem before any rotation: %v, %d bytes", err, len(links))
	}
}

// Without a CA the operator hears where it looked and what to check.
func TestKeysWithoutCA(t *testing.T) {
	for _, args := range [][]string{{"keys", "list"}, {"issuers", "export", "--out", t.TempDir()}} {
		r := run(t, append(args, "--ca", "127.0.0.1:1", "--timeout", "5s")...)
		if r.code == 0 || !strings.Contains(r.stderr, "the CA at 127.0.0.1:1 is unreachable (is shomei-ca running?") {
			t.Errorf("%v without a CA: code %d, stderr %q", args, r.code, r.stderr)
		}
	}
}
