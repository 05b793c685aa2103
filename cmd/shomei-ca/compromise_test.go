package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// TestIssuerCompromise: the last row of R-R1 and R-K2. With the CA
// running, shomeictl refuses (the store is locked); stopped, `shomeictl
// issuers compromise sign-g1 --yes` revokes every SIGN certificate of
// generation 1 with cACompromise. After a restart OCSP says so, the AUTH
// certificates stay good, SIGN issuance is refused naming R-K2, and AUTH
// issuance goes on.
func TestIssuerCompromise(t *testing.T) {
	dir := t.TempDir()
	conf := writeConfig(t, dir, "e2e-compromise", "")
	p := startCA(t, conf)
	ctx := context.Background()
	issue := func(p *caProc, id string, profiles ...cav1.Profile) (*cav1.IssueResponse, error) {
		var reqs []*cav1.ProfileRequest
		for _, pr := range profiles {
			reqs = append(reqs, &cav1.ProfileRequest{Profile: pr, Csr: csr(t, rsaKey(t))})
		}
		return p.client(t).Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: holder(id),
			Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
			Profiles:    reqs})
	}
	var certs []*cav1.Certificate
	for _, id := range []string{"KC-1", "KC-2"} {
		out, err := issue(p, id, cav1.Profile_PROFILE_SIGN, cav1.Profile_PROFILE_AUTH)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, out.Certificates...)
	}
	work := t.TempDir()
	signIssuer := writeCertPEM(t, filepath.Join(work, "sign-ca.pem"), fetchIssuer(t, p, "shomei-sign-g1").Raw)
	authIssuer := writeCertPEM(t, filepath.Join(work, "auth-ca.pem"), fetchIssuer(t, p, "shomei-auth-g1").Raw)

	shomeictl := func(args ...string) (string, error) {
		out, err := exec.Command(filepath.Join(binDir, "shomeictl"), append([]string{"--config", conf}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := shomeictl("issuers", "compromise", "sign-g1", "--yes"); err == nil || !strings.Contains(out, "stop shomei-ca first") {
		t.Errorf("with the CA running: %v\n%s", err, out)
	}
	p.stop(t)
	if out, err := shomeictl("issuers", "compromise", "sign-g1"); err == nil || !strings.Contains(out, "--yes") {
		t.Errorf("without --yes: %v\n%s", err, out)
	}
	out, err := shomeictl("issuers", "compromise", "sign-g1", "--yes", "--operator", "e2e")
	if err != nil || !strings.Contains(out, "2 certificates revoked (cACompromise), 0 already revoked") {
		t.Fatalf("compromise: %v\n%s", err, out)
	}
	if out, err := shomeictl("issuers", "compromise", "sign-g1", "--yes"); err != nil || !strings.Contains(out, "0 certificates revoked (cACompromise), 2 already revoked") {
		t.Errorf("again: %v\n%s", err, out)
	}
	if out, err := shomeictl("audit", "verify", "--offline"); err != nil {
		t.Errorf("audit verify after the compromise: %v\n%s", err, out)
	}

	p = startCA(t, conf)
	url := "http://" + p.http + "/ocsp"
	for _, c := range certs {
		want, issuerPEM := "good", authIssuer
		if c.Profile == cav1.Profile_PROFILE_SIGN {
			want, issuerPEM = "revoked cACompromise", signIssuer
		}
		if got := ocspStatus(t, work, "POST", url, issuerPEM, writeCertPEM(t, filepath.Join(work, c.Serial+".pem"), c.Der)); got != want {
			t.Errorf("%s %s: OCSP says %q, want %q", c.Profile, c.Serial, got, want)
		}
	}
	_, err = issue(p, "KC-3", cav1.Profile_PROFILE_SIGN)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "R-K2") {
		t.Errorf("SIGN issuance after the compromise: %v; want FailedPrecondition naming R-K2", err)
	}
	if _, err := issue(p, "KC-3", cav1.Profile_PROFILE_AUTH); err != nil {
		t.Errorf("AUTH issuance after the SIGN compromise: %v", err)
	}
	p.stop(t)
}
