package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// Tokens of the compromise tests: a municipal system and two operators.
const (
	operatorsMunicipalToken = "compromise-municipal-token-01234"
	operatorsAliceToken     = "compromise-alice-token-012345678"
	operatorsBobToken       = "compromise-bob-token-0123456789a"
)

// writeOperatorsConfig writes a configuration for token label with a
// municipal client (operatorsMunicipalToken, Kiyose) and two operators,
// alice and bob, approvals required 2: the set-up of every test in which
// operators propose and approve (compromise, rotation, the repository
// page). It returns the configuration and the operators' token files.
func writeOperatorsConfig(t *testing.T, dir, label string) (conf, alice, bob string) {
	t.Helper()
	writeToken(t, dir, "municipal.token", operatorsMunicipalToken)
	writeToken(t, dir, "alice.token", operatorsAliceToken)
	writeToken(t, dir, "bob.token", operatorsBobToken)
	conf = writeConfig(t, dir, label, `approvals:
  required: 2
clients:
  - name: kiyose
    token_file: municipal.token
    municipalities: ["13221"]
  - name: alice
    token_file: alice.token
    operator: true
  - name: bob
    token_file: bob.token
    operator: true
`)
	return conf, filepath.Join(dir, "alice.token"), filepath.Join(dir, "bob.token")
}

var proposalID = regexp.MustCompile(`proposal:\s+([0-9a-f]{16})`)

// proposeCompromise has alice propose the compromise of sign-g1 with
// shomeictl and returns the proposal id.
func proposeCompromise(t *testing.T, conf, addr, alice string) string {
	t.Helper()
	out, err := shomeictl(conf, "approvals", "propose", "compromise", "--ca", addr, "--token-file", alice,
		"--profile", "sign", "--generation", "1", "--reason", "the issuer key was copied off the HSM")
	m := proposalID.FindStringSubmatch(out)
	if err != nil || m == nil || !strings.Contains(out, "shomeictl approvals approve "+m[1]) {
		t.Fatalf("propose: %v\n%s", err, out)
	}
	return m[1]
}

// TestIssuerCompromise: the last row of R-R1 and R-K2, on the running CA.
// alice proposes the compromise of sign-g1 with shomeictl; she cannot
// approve it herself; bob approves and follows it to the end. Every SIGN
// certificate of generation 1 is revoked with cACompromise and OCSP says
// so at once, the AUTH certificates stay good, SIGN issuance is refused
// naming R-K2 and AUTH issuance goes on — before and after a restart.
func TestIssuerCompromise(t *testing.T) {
	dir := t.TempDir()
	conf, alice, bob := writeOperatorsConfig(t, dir, "e2e-compromise")
	p := startCA(t, conf)
	ctx := context.Background()
	issue := func(p *caProc, id string, profiles ...cav1.Profile) (*cav1.IssueResponse, error) {
		var reqs []*cav1.ProfileRequest
		for _, pr := range profiles {
			reqs = append(reqs, &cav1.ProfileRequest{Profile: pr, Csr: csr(t, rsaKey(t))})
		}
		return cav1.NewCertificateAuthorityClient(testenv.Dial(t, p.grpc, operatorsMunicipalToken)).Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: holder(id),
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

	id := proposeCompromise(t, conf, p.grpc, alice)
	if out, err := shomeictl(conf, "approvals", "approve", id, "--ca", p.grpc, "--token-file", alice); err == nil || !strings.Contains(out, "proposer cannot approve") {
		t.Errorf("alice approves her own: %v\n%s", err, out)
	}
	if out, err := shomeictl(conf, "approvals", "list", "--ca", p.grpc, "--token-file", bob); err != nil || !strings.Contains(out, id+"  OPEN") {
		t.Errorf("list: %v\n%s", err, out)
	}
	out, err := shomeictl(conf, "approvals", "approve", id, "--watch", "--ca", p.grpc, "--token-file", bob)
	if err != nil || !strings.Contains(out, "state:     EXECUTED") || !strings.Contains(out, "2 certificates revoked (cACompromise), 0 were revoked before") {
		t.Fatalf("bob approves: %v\n%s", err, out)
	}

	check := func(p *caProc, holderID string) {
		t.Helper()
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
		_, err := issue(p, holderID, cav1.Profile_PROFILE_SIGN)
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "R-K2") {
			t.Errorf("SIGN issuance after the compromise: %v; want FailedPrecondition naming R-K2", err)
		}
		if _, err := issue(p, holderID, cav1.Profile_PROFILE_AUTH); err != nil {
			t.Errorf("AUTH issuance after the SIGN compromise: %v", err)
		}
	}
	check(p, "KC-3")
	p.stop(t)
	p = startCA(t, conf)
	check(p, "KC-4")
	p.stop(t)

	st, err := store.Open(filepath.Join(dir, "shomei.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.VerifyAudit(); err != nil {
		t.Errorf("audit after the compromise: %v", err)
	}
}
