package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// waitMetric polls the CA's /metrics until ok accepts series's value, or
// fails the test after within.
func waitMetric(t *testing.T, p *caProc, series string, within time.Duration, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := metric(t, p.http, series)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %s is %v", within, series, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPresignedOCSPAcrossRestart (issue 12, OCSP for every certificate):
// the real shomei-ca pre-signs the response of every certificate it
// issues; restarted, it answers `openssl ocsp` (POST and GET) for each of
// them from the store with no HSM signature at all (neither on demand nor
// by the pre-signer); a revocation shows in `openssl ocsp` within 1 s
// (R-R4) and is pre-signed in turn.
func TestPresignedOCSPAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "e2e-presign", "")
	p := startCA(t, config)
	cl := p.client(t)
	const holders = 4
	var certs []*cav1.Certificate
	for i := range holders {
		sign, auth := issuePair(t, cl, "PRE-"+string(rune('A'+i)))
		certs = append(certs, sign, auth)
	}
	n := float64(len(certs))
	waitMetric(t, p, "shomei_ocsp_presigned_total", 30*time.Second, func(v float64) bool { return v >= n })
	waitMetric(t, p, "shomei_ocsp_presign_backlog", 30*time.Second, func(v float64) bool { return v == 0 })
	if s := metric(t, p.http, "shomei_ocsp_presign_signatures_total"); s != n {
		t.Errorf("%v pre-signer signatures for %v certificates", s, n)
	}
	p.stop(t)

	p = startCA(t, config)
	work := t.TempDir()
	issuers := map[cav1.Profile]string{}
	for profile, label := range map[cav1.Profile]string{cav1.Profile_PROFILE_SIGN: "shomei-sign-g1", cav1.Profile_PROFILE_AUTH: "shomei-auth-g1"} {
		issuers[profile] = writeCertPEM(t, filepath.Join(work, label+".pem"), fetchIssuer(t, p, label).Raw)
	}
	url := ocspURLOf(t, p, certs[0])
	pems := make([]string, len(certs))
	for i, c := range certs {
		pems[i] = filepath.Join(work, c.Serial+".pem")
		if err := os.WriteFile(pems[i], []byte(c.Pem), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, method := range []string{"POST", "GET"} {
			if got := ocspStatus(t, work, method, url, issuers[c.Profile], pems[i]); got != "good" {
				t.Fatalf("after the restart openssl ocsp (%s) says %s is %q", method, c.Serial, got)
			}
		}
	}
	if s := ocspSignatures(t, p.http); s != 0 {
		t.Errorf("the restarted CA signed %v responses for the requests; the pre-signed ones should have answered", s)
	}
	if s := metric(t, p.http, "shomei_ocsp_presign_signatures_total"); s != 0 {
		t.Errorf("the restarted CA's pre-signer signed %v responses again", s)
	}
	// Each certificate was asked about twice (POST, GET): both read the
	// store, the second caching the response (ocsp admit.go).
	if hits := metric(t, p.http, "shomei_ocsp_presigned_hits_total"); hits != 2*n {
		t.Errorf("shomei_ocsp_presigned_hits_total %v, want two per certificate (%v)", hits, 2*n)
	}

	// A revocation: openssl says revoked within 1 s, and the revoked
	// response is pre-signed.
	cl = p.client(t)
	revoked := certs[0]
	if _, err := cl.Revoke(context.Background(), &cav1.RevokeRequest{Serial: revoked.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	for {
		got := ocspStatus(t, work, "POST", url, issuers[revoked.Profile], pems[0])
		if got == "revoked keyCompromise" {
			t.Logf("revocation visible in OCSP after %v", time.Since(at).Round(time.Millisecond))
			break
		}
		if time.Since(at) > time.Second {
			t.Fatalf("1 s after the revocation openssl ocsp says %q, want revoked keyCompromise (R-R4)", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitMetric(t, p, "shomei_ocsp_presigned_total", 30*time.Second, func(v float64) bool { return v >= 1 })
	if got := ocspStatus(t, work, "GET", url, issuers[revoked.Profile], pems[0]); got != "revoked keyCompromise" {
		t.Errorf("openssl ocsp (GET) says %q after the revocation was pre-signed", got)
	}
	p.stop(t)
}

// TestPresignedTwoCAs: two shomei-ca processes on one PostgreSQL store
// (same token, each its own responder certificate). Only the leader
// pre-signs; the follower answers `openssl ocsp` for every certificate
// from what the leader stored, with no HSM signature of its own.
func TestPresignedTwoCAs(t *testing.T) {
	cas := startPostgresCAs(t, "e2e-presign-two", 2)
	leader, follower := cas[0], cas[1]
	if !isLeader(t, leader) {
		leader, follower = follower, leader
	}
	if !isLeader(t, leader) || isLeader(t, follower) {
		t.Fatal("want exactly one leader")
	}
	var certs []*cav1.Certificate
	for i := range 3 {
		// Issued through the follower: the leader pre-signs anyway.
		sign, auth := issuePair(t, follower.client(t), "TWOPRE-"+string(rune('A'+i)))
		certs = append(certs, sign, auth)
	}
	n := float64(len(certs))
	waitMetric(t, leader, "shomei_ocsp_presigned_total", 30*time.Second, func(v float64) bool { return v >= n })
	if s := metric(t, follower.http, "shomei_ocsp_presign_signatures_total"); s != 0 {
		t.Errorf("the follower pre-signed %v responses", s)
	}
	work := t.TempDir()
	issuers := map[cav1.Profile]string{}
	for profile, label := range map[cav1.Profile]string{cav1.Profile_PROFILE_SIGN: "shomei-sign-g1", cav1.Profile_PROFILE_AUTH: "shomei-auth-g1"} {
		issuers[profile] = writeCertPEM(t, filepath.Join(work, label+".pem"), fetchIssuer(t, follower, label).Raw)
	}
	url := ocspURLOf(t, follower, certs[0])
	for _, c := range certs {
		pem := filepath.Join(work, c.Serial+".pem")
		if err := os.WriteFile(pem, []byte(c.Pem), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := ocspStatus(t, work, "POST", url, issuers[c.Profile], pem); got != "good" {
			t.Fatalf("the follower says %s is %q", c.Serial, got)
		}
	}
	if s := ocspSignatures(t, follower.http); s != 0 {
		t.Errorf("the follower signed %v responses; the leader's pre-signed ones should have answered", s)
	}
	if hits := metric(t, follower.http, "shomei_ocsp_presigned_hits_total"); hits != n {
		t.Errorf("the follower's shomei_ocsp_presigned_hits_total %v, want %v", hits, n)
	}
	follower.stop(t)
	leader.stop(t)
}
