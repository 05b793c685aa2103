package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExampleConfiguration keeps deploy/shomei.example.yaml, the documented
// reference of every setting, loadable.
func TestExampleConfiguration(t *testing.T) {
	f, err := os.Open("../../deploy/shomei.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := Decode(f, "/etc/shomei")
	if err != nil {
		t.Fatalf("the example configuration does not load: %v", err)
	}
	if len(c.Clients) != 2 || !c.Clients[1].Replica || c.Server.GRPCListen != "127.0.0.1:8443" || !c.OCSPEnabled() || c.OCSP.RenewBefore != 48*time.Hour {
		t.Fatalf("example configuration decoded as %+v", c)
	}
}

// TestExampleReplicaConfiguration does the same for shomei-ocsp's.
func TestExampleReplicaConfiguration(t *testing.T) {
	c, err := LoadReplica("../../deploy/shomei-ocsp.example.yaml")
	if err != nil {
		t.Fatalf("the example replica configuration does not load: %v", err)
	}
	if c.Name != "tokyo1" || c.CA.Address != "ca.internal:8443" || c.OCSP.ResponseValidity != time.Hour {
		t.Fatalf("example replica configuration decoded as %+v", c)
	}
	raw, err := os.ReadFile("../../deploy/shomei-ocsp.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	clear := filepath.Join(t.TempDir(), "clear.yaml")
	os.WriteFile(clear, []byte(strings.Replace(string(raw), "  tls_ca_file:", "  # tls_ca_file:", 1)), 0o600)
	if _, err := LoadReplica(clear); err == nil || !strings.Contains(err.Error(), "ca.tls_ca_file is required") {
		t.Errorf("a token to a remote CA in clear: %v; want ca.tls_ca_file required", err)
	}
	bad := filepath.Join(t.TempDir(), "r.yaml")
	os.WriteFile(bad, []byte("name: Tokyo 1\nstore: {path: r.db}\nhsm: {module: x.so, token_label: t, pin_file: p}\ntypo: 1\n"), 0o600)
	if _, err := LoadReplica(bad); err == nil || !strings.Contains(err.Error(), "typo") {
		t.Errorf("an unknown key: %v; want it named", err)
	}
}
