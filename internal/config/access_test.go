package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHTTPAccess: http_access decodes with paths resolved, refuses what
// cannot work, and GateConfig reads the relying parties' credentials.
func TestHTTPAccess(t *testing.T) {
	refused(t, map[string]struct{ extra, want string }{
		"bad mode":                  {"http_access:\n  mode: closed\n", `http_access.mode "closed": open or registered`},
		"registered without anyone": {"http_access:\n  mode: registered\n", "http_access.mode registered needs relying_parties"},
		"no credential":             {"http_access:\n  relying_parties:\n    - name: bank-a\n", "token_file or client_cert_file is required"},
		"certificate without TLS":   {"http_access:\n  relying_parties:\n    - name: gov\n      client_cert_file: gov.pem\n", "client_cert_file needs http_access.tls"},
		"TLS without a key":         {"http_access:\n  tls:\n    cert_file: http.pem\n", "http_access.tls: cert_file and key_file are required"},
		"negative burst":            {"ocsp:\n  signature_burst: -1\n", "ocsp.signature_burst must not be negative"},
		"negative unknown_reuse":    {"ocsp:\n  unknown_reuse: -1s\n", "durations must not be negative"},
	})

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bank.token"), []byte("bank-a-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Decode(strings.NewReader(valid+`http_access:
  mode: registered
  per_address: {rate: 5, burst: 10, table_size: 100}
  relying_parties:
    - name: bank-a
      token_file: bank.token
      rate: 20
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.HTTPAccess.RelyingParties[0].TokenFile; got != filepath.Join(dir, "bank.token") {
		t.Errorf("token_file not resolved: %q", got)
	}
	gc, err := c.HTTPAccess.GateConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !gc.Registered || gc.AddressRate != 5 || gc.AddressBurst != 10 || gc.AddressTable != 100 ||
		len(gc.Parties) != 1 || string(gc.Parties[0].Token) != "bank-a-0123456789abcdef" || gc.Parties[0].Rate != 20 {
		t.Errorf("GateConfig = %+v", gc)
	}
	c.HTTPAccess.RelyingParties[0].TokenFile = filepath.Join(dir, "missing.token")
	if _, err := c.HTTPAccess.GateConfig(); err == nil || !strings.Contains(err.Error(), "bank-a") {
		t.Errorf("GateConfig with a missing token file = %v, want an error naming bank-a", err)
	}
	if conf, err := (HTTPAccess{}).ServerTLS(); conf != nil || err != nil {
		t.Errorf("ServerTLS without tls = %v, %v", conf, err)
	}
}
