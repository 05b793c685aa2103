package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// Tokens of the municipal clients of TestAttackGRPCAuth.
const (
	kiyoseToken = "kiyose-attack-token-0123456789"
	kurumeToken = "kurume-attack-token-0123456789"
	slowToken   = "slow-attack-token-0123456789ab"
)

// writeToken writes a client token file, private to its owner.
func writeToken(t *testing.T, dir, name, token string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAttackGRPCAuth: issue 9 items 5 (the gRPC half) and 10, through the
// real binary with two municipal clients. Every call is authenticated from
// its headers before the CA reads its body; another municipality's serial
// answers exactly like a missing one; clients and token-guessing addresses
// are rate-limited with RESOURCE_EXHAUSTED and a retry delay.
func TestAttackGRPCAuth(t *testing.T) {
	dir := t.TempDir()
	writeToken(t, dir, "kiyose.token", kiyoseToken)
	writeToken(t, dir, "kurume.token", kurumeToken)
	writeToken(t, dir, "slow.token", slowToken)
	p := startCA(t, writeConfig(t, dir, "e2e-auth", `clients:
  - name: kiyose
    token_file: kiyose.token
    municipalities: ["13221"]
  - name: higashikurume
    token_file: kurume.token
    municipalities: ["13222"]
  - name: slow
    token_file: slow.token
    municipalities: ["13223"]
    rate: 0.01
    burst: 2
`))
	ctx := context.Background()
	kiyoseCA := cav1.NewCertificateAuthorityClient(testenv.Dial(t, p.grpc, kiyoseToken))
	kurumeCA := cav1.NewCertificateAuthorityClient(testenv.Dial(t, p.grpc, kurumeToken))
	anonymous := cav1.NewCertificateAuthorityClient(p.conn(t))

	issued, err := kiyoseCA.Issue(ctx, &cav1.IssueRequest{
		Municipality: kiyose, Holder: holder("AUTH-1"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr(t, rsaKey(t))}},
	})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	existing := issued.Certificates[0].Serial
	// A serial of the same length that no certificate has.
	missing := strings.Repeat("7", len(existing))

	t.Run("ExistenceOracle", func(t *testing.T) {
		// Without a token: the same answer, Unauthenticated, whether the
		// serial exists or not.
		for _, serial := range []string{existing, missing} {
			_, err := anonymous.GetCertificate(ctx, &cav1.GetCertificateRequest{Serial: serial})
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("GetCertificate(%s) without a token: %v, want Unauthenticated", serial, err)
			}
			_, err = anonymous.Revoke(ctx, &cav1.RevokeRequest{Serial: serial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE})
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("Revoke(%s) without a token: %v, want Unauthenticated", serial, err)
			}
		}
		// Another municipality's serial: exactly the answer of a missing
		// one, code, message and details, with no municipality named.
		answer := func(err error, serial string) string {
			st := status.Convert(err)
			b, _ := proto.Marshal(st.Proto())
			return strings.ReplaceAll(string(b), serial, "SERIAL")
		}
		_, errOther := kurumeCA.GetCertificate(ctx, &cav1.GetCertificateRequest{Serial: existing})
		_, errMissing := kurumeCA.GetCertificate(ctx, &cav1.GetCertificateRequest{Serial: missing})
		if status.Code(errOther) != codes.NotFound || answer(errOther, existing) != answer(errMissing, missing) {
			t.Errorf("GetCertificate of another municipality's serial: %v\nof a missing serial: %v\nwant the same NotFound", errOther, errMissing)
		}
		_, errOther = kurumeCA.Revoke(ctx, &cav1.RevokeRequest{Serial: existing, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE})
		_, errMissing = kurumeCA.Revoke(ctx, &cav1.RevokeRequest{Serial: missing, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE})
		if status.Code(errOther) != codes.NotFound || answer(errOther, existing) != answer(errMissing, missing) {
			t.Errorf("Revoke of another municipality's serial: %v\nof a missing serial: %v\nwant the same NotFound", errOther, errMissing)
		}
		if strings.Contains(status.Convert(errOther).Message(), "13221") {
			t.Errorf("Revoke names the owning municipality: %v", errOther)
		}
		// The owner still sees it, unrevoked.
		got, err := kiyoseCA.GetCertificate(ctx, &cav1.GetCertificateRequest{Serial: existing})
		if err != nil || got.Certificate.Status != cav1.Status_STATUS_VALID {
			t.Errorf("the owner's GetCertificate: %v, %v; want a valid certificate", got, err)
		}
	})

	t.Run("IndividualNumberIDs", func(t *testing.T) {
		// Issue 9 item 12: free-form ids that look like an individual
		// number are refused, naming the field; event ids never reach the
		// log whole.
		events := cav1.NewEventsClient(testenv.Dial(t, p.grpc, kiyoseToken))
		effective := time.Now().In(time.FixedZone("JST", 9*3600)).Format(time.RFC3339)
		event := func(id, holderID string) error {
			_, err := events.ReportEvent(ctx, &cav1.ReportEventRequest{EventId: id, MunicipalityCode: "13221", HolderId: holderID,
				Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: effective})
			return err
		}
		checkField(t, event("move-1234-5678-9018", "AUTH-1"), "event_id")
		checkField(t, event("auth-move-1", "1234 5678 9018"), "holder_id")
		_, err := kiyoseCA.ListCertificates(ctx, &cav1.ListCertificatesRequest{MunicipalityCode: "13221", HolderId: "123456789018"})
		checkField(t, err, "holder_id")
		if got, err := kiyoseCA.GetCertificate(ctx, &cav1.GetCertificateRequest{Serial: existing}); err != nil || got.Certificate.Status != cav1.Status_STATUS_VALID {
			t.Errorf("a refused event changed the certificate: %v, %v", got, err)
		}
		if err := event("auth-evt-20261206", "AUTH-NOBODY"); err != nil && status.Code(err) != codes.NotFound {
			t.Errorf("an ordinary event id: %v", err)
		}
		for _, id := range []string{"1234-5678-9018", "123456789018", "auth-evt-20261206"} {
			if strings.Contains(p.Log.String(), id) {
				t.Errorf("the log holds %q:\n%s", id, p.Log)
			}
		}
	})

	t.Run("ClientRateLimit", func(t *testing.T) {
		slow := cav1.NewCertificateAuthorityClient(testenv.Dial(t, p.grpc, slowToken))
		var last error
		for range 3 {
			_, last = slow.ListCertificates(ctx, &cav1.ListCertificatesRequest{MunicipalityCode: "13223", HolderId: "SLOW-1"})
		}
		checkExhausted(t, last, "client over its rate")
		// Another client is not held back by it.
		if _, err := kiyoseCA.ListCertificates(ctx, &cav1.ListCertificatesRequest{MunicipalityCode: "13221", HolderId: "AUTH-1"}); err != nil {
			t.Errorf("kiyose while slow is limited: %v", err)
		}
	})

	t.Run("UnauthenticatedFlood", func(t *testing.T) {
		// Unauthenticated 4 MB messages, many at once over several
		// connections: each is refused from its headers, so the CA never
		// holds them. Before the tap handle each one was read and
		// unmarshalled (RSS to 1.4 GB in the report).
		const conns, perConn, rounds = 8, 12, 2
		big := &cav1.IssueRequest{Municipality: kiyose, Holder: holder("FLOOD"),
			Profiles: []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: make([]byte, 4<<20-4096)}}}
		before := vmRSS(t, p)
		var wg sync.WaitGroup
		errs := make(chan error, conns*perConn*rounds)
		for c := range conns {
			conn, err := grpc.NewClient(p.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithPerRPCCredentials(clienttoken.Bearer(fmt.Sprintf("guessed-token-%020d", c))))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cl := cav1.NewCertificateAuthorityClient(conn)
			for range perConn {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range rounds {
						cctx, cancel := context.WithTimeout(ctx, time.Minute)
						_, err := cl.Issue(cctx, big)
						cancel()
						errs <- err
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		counts := map[codes.Code]int{}
		for err := range errs {
			counts[status.Code(err)]++
		}
		if len(counts) > 2 || counts[codes.Unauthenticated]+counts[codes.ResourceExhausted] != conns*perConn*rounds {
			t.Errorf("answers to unauthenticated 4 MB calls: %v; want only Unauthenticated and ResourceExhausted", counts)
		}
		after := vmRSS(t, p)
		t.Logf("RSS before the flood %d MB, after %d MB; answers %v", before>>20, after>>20, counts)
		if after-before > 200<<20 {
			t.Errorf("RSS grew by %d MB during an unauthenticated flood; the bound is 200 MB", (after-before)>>20)
		}
	})

	t.Run("TokenGuessing", func(t *testing.T) {
		// Guesses from one address use up its failed-authentication
		// budget (burst 20, then 1/s): after it, guesses are not even
		// checked.
		guesser := cav1.NewCertificateAuthorityClient(testenv.Dial(t, p.grpc, "yet-another-guess-0123456789"))
		var err error
		for range 30 {
			_, err = guesser.ListCertificates(ctx, &cav1.ListCertificatesRequest{MunicipalityCode: "13221", HolderId: "AUTH-1"})
		}
		checkExhausted(t, err, "token guessing")
		// A right guess now gets the same answer; kiyose, which had
		// called from this address before, goes on.
		_, err = cav1.NewCertificateAuthorityClient(testenv.Dial(t, p.grpc, slowToken)).ListCertificates(ctx,
			&cav1.ListCertificatesRequest{MunicipalityCode: "13223", HolderId: "SLOW-1"})
		checkExhausted(t, err, "a right token from a blocked address, never seen there")
		if _, err := kiyoseCA.ListCertificates(ctx, &cav1.ListCertificatesRequest{MunicipalityCode: "13221", HolderId: "AUTH-1"}); err != nil {
			t.Errorf("kiyose from the guessing address: %v", err)
		}
		metrics := get(t, "http://"+p.http+"/metrics")
		for _, reason := range []string{"unauthenticated", "address_rate", "client_rate"} {
			if !strings.Contains(metrics, `shomei_grpc_refused_total{reason="`+reason+`"}`) {
				t.Errorf("/metrics lacks shomei_grpc_refused_total{reason=%q}", reason)
			}
		}
	})

	// Health and reflection stay public: grpcurl lists the services
	// without a token.
	cmd := exec.Command("go", "tool", "-modfile=../../internal/tools/go.mod", "grpcurl", "-plaintext", p.grpc, "list")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "shomei.ca.v1.CertificateAuthority") {
		t.Errorf("grpcurl list without a token: %v\n%s", err, out)
	}
	if strings.Contains(p.Log.String(), kiyoseToken) || strings.Contains(p.Log.String(), "guessed-token") {
		t.Errorf("a token reached the log:\n%s", p.Log)
	}
}

// checkField fails unless err is InvalidArgument with a field violation
// of field under rule R-P4.
func checkField(t *testing.T, err error, field string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Errorf("%s: %v, want InvalidArgument", field, err)
		return
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field && v.GetReason() == "R-P4" {
					return
				}
			}
		}
	}
	t.Errorf("%s: %v names no violation of %s (R-P4)", field, err, field)
}

// checkExhausted fails unless err is ResourceExhausted with a RetryInfo
// delay.
func checkExhausted(t *testing.T, err error, what string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Errorf("%s: %v, want ResourceExhausted", what, err)
		return
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return
		}
	}
	t.Errorf("%s: %v carries no RetryInfo delay", what, err)
}

// vmRSS is the resident set size of the running binary, in bytes.
func vmRSS(t *testing.T, p *caProc) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}
