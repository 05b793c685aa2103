package config

import (
	"strings"
	"testing"
)

// FuzzDecode feeds the configuration loaders arbitrary bytes: a file an
// operator wrote by hand must give a configuration or an error, never a
// panic or a hang. What Decode accepts must also validate again (decoding
// is deterministic).
func FuzzDecode(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("store:\n  path: x\n"))
	f.Add([]byte("clients:\n  - name: a\n    token_file: t\n    municipalities: [\"13221\"]\n"))
	f.Add([]byte("server:\n  grpc_listen: 127.0.0.1:0\n  tls: {cert_file: a, key_file: b}\n"))
	f.Add([]byte("ocsp: {responder_validity: 1h, renew_before: -1s}\n"))
	f.Add([]byte("&a [*a, *a, *a]"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return // configuration files are small; yaml's own limits cover the rest
		}
		c, err := Decode(strings.NewReader(string(data)), "/etc/shomei")
		if err == nil {
			if verr := c.validate(); verr != nil {
				t.Fatalf("Decode accepted a configuration that does not validate again: %v", verr)
			}
		}
		_, _ = DecodeReplica(strings.NewReader(string(data)), "/etc/shomei")
	})
}
