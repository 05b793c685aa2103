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
	if len(c.Clients) != 4 || !c.Clients[1].Replica || !c.Clients[2].Operator || !c.Clients[3].Operator || c.Approvals.Required != 2 || c.Server.GRPCListen != "127.0.0.1:8443" || !c.OCSPEnabled() || c.OCSP.RenewBefore != 8*time.Hour || len(c.Clients[1].ResponderKeys) != 2 || c.Audit.CheckpointEvery != 100 {
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

// TestResponderKeysValidated: a malformed pin, or enrollment on a
// municipal client, is refused at load with the client named.
func TestResponderKeysValidated(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/shomei.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ old, new, want string }{
		"a short pin":                            {"sha256:8a1f7c3e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d2f4a", "sha256:8a1f", "clients[1].responder_keys[0]"},
		"a municipal client with responder keys": {`municipalities: ["13221"]`, "municipalities: [\"13221\"]\n    issuers: [sign-g1]", "clients[0]: responder_keys and issuers are for replicas only"},
	} {
		_, err := Decode(strings.NewReader(strings.Replace(string(raw), tc.old, tc.new, 1)), "/etc/shomei")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", name, err, tc.want)
		}
	}
}

// TestOperatorClientsAndApprovals: an operator acts for no municipality and
// is not a replica; approvals are bounded. Each mistake is refused at load,
// naming the setting.
func TestOperatorClientsAndApprovals(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/shomei.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ old, new, want string }{
		"an operator with municipalities": {"sato.token\n    operator: true", "sato.token\n    operator: true\n    municipalities: [\"13221\"]", "clients[2]: a replica or an operator acts for no municipality"},
		"an operator and a replica":       {"sato.token\n    operator: true", "sato.token\n    operator: true\n    replica: true", "clients[2]: a client is a replica or an operator, not both"},
		"approvals.required 0 operators":  {"required: 2", "required: -1", "approvals.required -1"},
		"approvals.required over 10":      {"required: 2", "required: 11", "approvals.required 11"},
		"approvals expiring at once":      {"expire_after: 24h", "expire_after: 1s", "approvals.expire_after 1s: at least a minute"},
		"approvals waiting a year":        {"expire_after: 24h", "expire_after: 8760h", "approvals.expire_after 8760h0m0s: at most"},
	} {
		changed := strings.Replace(string(raw), tc.old, tc.new, 1)
		if changed == string(raw) {
			t.Fatalf("%s: %q is not in the example", name, tc.old)
		}
		_, err := Decode(strings.NewReader(changed), "/etc/shomei")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", name, err, tc.want)
		}
	}
	if a := (Approvals{}).WithDefaults(); a.Required != 2 || a.ExpireAfter != 24*time.Hour {
		t.Errorf("default approvals %+v, want 2 operators within 24h", a)
	}
}
