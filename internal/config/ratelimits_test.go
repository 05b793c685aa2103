package config

import (
	"strings"
	"testing"
)

func TestDecodeAuthSettings(t *testing.T) {
	c, err := Decode(strings.NewReader(valid+`server:
  rate_limits: {client_rate: 10, client_burst: 20, failure_rate: 0.5, failure_burst: 5}
clients:
  - {name: kiyose, token_file: k.token, municipalities: ["13221"], tls_name: kiyose.example, rate: 2, burst: 3}
`), "/etc/shomei")
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Server.RateLimits; r.ClientRate != 10 || r.ClientBurst != 20 || r.FailureRate != 0.5 || r.FailureBurst != 5 {
		t.Errorf("rate_limits %+v", r)
	}
	if cl := c.Clients[0]; cl.TLSName != "kiyose.example" || cl.Rate != 2 || cl.Burst != 3 {
		t.Errorf("client %+v", cl)
	}
	for in, want := range map[string]string{
		"server:\n  rate_limits: {client_rate: 1, client_burst: -1}\n":                              "bursts must not be negative",
		"clients:\n  - {name: k, token_file: t, municipalities: [\"13221\"], rate: 1, burst: -2}\n": "clients[0]: burst",
	} {
		if _, err := Decode(strings.NewReader(valid+in), "/etc/shomei"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

func TestDecodeReplicaClientCertificate(t *testing.T) {
	base := "name: r1\nstore: {path: r.db}\nhsm: {module: x.so, token_label: t, pin_file: p}\nca:\n  address: ca.internal:8443\n  token_file: t\n"
	for in, want := range map[string]string{
		"  tls_ca_file: ca.pem\n  tls_cert_file: c.pem\n":                        "both or neither",
		"  tls_ca_file: ca.pem\n  tls_key_file: k.pem\n":                         "both or neither",
		"  tls_ca_file: ca.pem\n  tls_cert_file: c.pem\n  tls_key_file: k.pem\n": "",
	} {
		c, err := DecodeReplica(strings.NewReader(base+in), "/etc/r")
		if want == "" {
			if err != nil || c.CA.TLSKeyFile != "/etc/r/k.pem" {
				t.Errorf("%q: %v, %+v", in, err, c)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
