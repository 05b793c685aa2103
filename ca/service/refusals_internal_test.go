package service

import (
	"fmt"
	"testing"
)

// TestKnownMethod: the gate audits refusals before grpc-go has looked the
// method up, so an invented method name must not reach the audit log or a
// metric label (their cardinality is the attacker's otherwise).
func TestKnownMethod(t *testing.T) {
	for in, want := range map[string]string{
		"/shomei.ca.v1.CertificateAuthority/Issue":  "/shomei.ca.v1.CertificateAuthority/Issue",
		"/shomei.ca.v1.Events/ReportEvent":          "/shomei.ca.v1.Events/ReportEvent",
		"/shomei.ca.v1.CertificateAuthority/Issue2": "unknown",
		"/shomei.ca.v1.NoSuchService/Issue":         "unknown",
		"/shomei.store.v1.Certificate/Issue":        "unknown",
		"Issue":                                     "unknown",
		"":                                          "unknown",
		fmt.Sprintf("/%0300d/x", 0):                 "unknown",
	} {
		if got := knownMethod(in); got != want {
			t.Errorf("knownMethod(%.40q) = %q, want %q", in, got, want)
		}
	}
}
