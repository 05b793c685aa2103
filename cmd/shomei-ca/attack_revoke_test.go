package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// privateCA is a shomei-ca on a SoftHSM2 token directory of its own (so
// that a test may take the token away), with its work directory.
type privateCA struct {
	dir, tokens, config string
	hsm                 *softhsm.Dir
}

// newPrivateCA makes a token directory with one token and the CA's
// configuration for it.
func newPrivateCA(t *testing.T, extra string) privateCA {
	t.Helper()
	dir := t.TempDir()
	hsmDir, err := softhsm.NewDir(filepath.Join(dir, "softhsm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := hsmDir.InitToken("attack", softhsm.TestSOPIN, softhsm.TestPIN); err != nil {
		t.Fatal(err)
	}
	token, err := testenv.Token(hsmDir, "attack")
	if err != nil {
		t.Fatal(err)
	}
	path, err := testenv.WriteCA(dir, token, extra)
	if err != nil {
		t.Fatal(err)
	}
	return privateCA{dir: dir, tokens: filepath.Join(hsmDir.Root, "tokens"), config: path, hsm: hsmDir}
}

// issuePair issues SIGN and AUTH to a new holder of Kiyose.
func issuePair(t testing.TB, cl cav1.CertificateAuthorityClient, holderID string) (sign, auth *cav1.Certificate) {
	t.Helper()
	issued, err := cl.Issue(context.Background(), &cav1.IssueRequest{
		Municipality: kiyose, Holder: holder(holderID),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles:    bothProfiles(t),
	})
	if err != nil {
		t.Fatalf("issue %s: %v", holderID, err)
	}
	return issued.Certificates[0], issued.Certificates[1]
}

// refusedNaming checks that err is code with a message naming every one of
// words (the field and the rule).
func refusedNaming(t *testing.T, what string, err error, code codes.Code, words ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Errorf("%s: %v, want %v", what, err, code)
		return
	}
	for _, w := range words {
		if !strings.Contains(st.Message(), w) {
			t.Errorf("%s: %q does not name %s", what, st.Message(), w)
		}
	}
}

// fetch GETs url: the response (its body read and closed) and the body.
// The e2e tests' one HTTP GET; httpGet and get are its shorthands.
func fetch(t testing.TB, url string) (*http.Response, []byte) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r, body
}

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	r, body := fetch(t, url)
	return r.StatusCode, string(body)
}

// crlEntries waits (up to R-R4's 60 s) for cert's partition CRL to list
// exactly want of the serials, and returns the serials it lists.
func crlEntries(t *testing.T, p *caProc, cert *cav1.Certificate, want ...string) map[string]bool {
	t.Helper()
	c, err := x509.ParseCertificate(cert.Der)
	if err != nil || len(c.CRLDistributionPoints) != 1 {
		t.Fatalf("certificate CRL DP: %v", err)
	}
	url := strings.Replace(c.CRLDistributionPoints[0], "127.0.0.1:8080", p.http, 1)
	var got map[string]bool
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body := httpGet(t, url)
		got = map[string]bool{}
		if code == http.StatusOK {
			list, err := x509.ParseRevocationList([]byte(body))
			if err != nil {
				t.Fatalf("the CRL at %s does not parse: %v", url, err)
			}
			for _, e := range list.RevokedCertificateEntries {
				got[fmt.Sprintf("%x", e.SerialNumber)] = true
			}
		}
		all := true
		for _, s := range want {
			all = all && got[s]
		}
		if all {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("60 s on, the CRL at %s lists %v, not %v (R-R4)\n%s", url, got, want, p.Log)
		}
	}
}

// TestAttackRevokeEffectiveTimeOutOfDomain: a municipal system revokes
// with an effective time the CRL cannot carry (year 1000, year 0001) or
// in the future, by counter request and by event. Each is refused with
// InvalidArgument naming effective_time and R-R3, nothing is revoked, and
// a later valid revocation reaches the partition's CRL.
func TestAttackRevokeEffectiveTimeOutOfDomain(t *testing.T) {
	pc := newPrivateCA(t, "")
	p := startCA(t, pc.config)
	cl := p.client(t)
	events := cav1.NewEventsClient(p.conn(t))
	ctx := context.Background()
	signA, _ := issuePair(t, cl, "ATT-T1")
	signB, _ := issuePair(t, cl, "ATT-T2")

	for _, eff := range []string{"1000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "1949-12-31T23:59:59Z",
		time.Now().AddDate(0, 0, -3).Format(time.RFC3339), // before the certificate existed
		time.Now().Add(time.Hour).Format(time.RFC3339), "2026-13-01T00:00:00Z", "yesterday"} {
		_, err := cl.Revoke(ctx, &cav1.RevokeRequest{Serial: signA.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE, EffectiveTime: eff})
		refusedNaming(t, "Revoke effective "+eff, err, codes.InvalidArgument, "effective_time", "R-R3")
		_, err = events.ReportEvent(ctx, &cav1.ReportEventRequest{EventId: "death-" + hex.EncodeToString([]byte(eff)), MunicipalityCode: kiyose.Code,
			HolderId: "ATT-T2", Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: eff})
		refusedNaming(t, "ReportEvent effective "+eff, err, codes.InvalidArgument, "effective_time", "R-R3")
	}
	for _, c := range []*cav1.Certificate{signA, signB} {
		got, err := cl.GetCertificate(ctx, &cav1.GetCertificateRequest{Serial: c.Serial})
		if err != nil || got.GetCertificate().GetStatus() != cav1.Status_STATUS_VALID {
			t.Fatalf("after the refused requests %s is %v %v, want VALID: they changed something", c.Serial, got.GetCertificate().GetStatus(), err)
		}
	}

	// A valid revocation still reaches the CRL.
	if _, err := cl.Revoke(ctx, &cav1.RevokeRequest{Serial: signA.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	crlEntries(t, p, signA, signA.Serial)
	if code, body := httpGet(t, "http://"+p.http+"/readyz"); code != http.StatusOK || strings.Contains(body, "degraded") {
		t.Errorf("/readyz: %d %s, want 200 and nothing degraded", code, body)
	}
	p.stop(t)
}

// TestAttackCRLEntryCannotFreezePartition: a revocation with an
// invalidityDate in year 1000, recorded by a CA from before the API
// checked effective times (planted here directly in the bbolt store),
// must not keep the partition's other revocations off its CRL: the
// entry is left out, and reported in the log (its serial only), in
// shomei_crl_entries_skipped_total and on /readyz.
func TestAttackCRLEntryCannotFreezePartition(t *testing.T) {
	pc := newPrivateCA(t, "")
	p := startCA(t, pc.config)
	cl := p.client(t)
	signA, _ := issuePair(t, cl, "ATT-F1")
	signB, _ := issuePair(t, cl, "ATT-F2")
	// The revocation goes through the CA (the audit log is sealed at its
	// stop: nothing else may append to it) ...
	if _, err := cl.Revoke(context.Background(), &cav1.RevokeRequest{Serial: signA.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
	sn, _ := hex.DecodeString(signA.Serial)
	// ... and then what the CA recorded before the fix: the caller's
	// year-1000 effective time as the invalidityDate, in the certificate
	// and its CRL entry.
	plantInvalidityDate(t, filepath.Join(pc.dir, "shomei.db"), sn, time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC))

	p = startCA(t, pc.config)
	cl = p.client(t)
	if _, err := cl.Revoke(context.Background(), &cav1.RevokeRequest{Serial: signB.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_AFFILIATION_CHANGED}); err != nil {
		t.Fatal(err)
	}
	got := crlEntries(t, p, signB, signB.Serial)
	if got[signA.Serial] {
		t.Errorf("the CRL lists the unencodable entry %s", signA.Serial)
	}
	if !strings.Contains(p.Log.String(), "serial="+signA.Serial) || !strings.Contains(p.Log.String(), "left off its CRL") {
		t.Errorf("the log does not report the skipped entry %s:\n%s", signA.Serial, p.Log)
	}
	for _, personal := range []string{"ATT-F1", "渡邊", "1990-06-15"} {
		if strings.Contains(p.Log.String(), personal) {
			t.Errorf("the log carries personal data %q", personal)
		}
	}
	_, metrics := httpGet(t, "http://"+p.http+"/metrics")
	if !strings.Contains(metrics, "shomei_crl_entries_skipped_total{partition=") {
		t.Errorf("/metrics lacks shomei_crl_entries_skipped_total")
	}
	code, body := httpGet(t, "http://"+p.http+"/readyz")
	if code != http.StatusOK || !strings.Contains(body, "crl: degraded") || !strings.Contains(body, "left off") {
		t.Errorf("/readyz: %d %q, want 200 with the CRL degraded and why", code, body)
	}
	p.stop(t)
}

// plantInvalidityDate rewrites, directly in the bbolt file, the
// invalidityDate of a revoked certificate's record and CRL entry.
func plantInvalidityDate(t *testing.T, path string, serial []byte, at time.Time) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	planted := 0
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"certs", "crl_entries"} {
			b := tx.Bucket([]byte(name))
			var keys [][]byte
			b.ForEach(func(k, _ []byte) error {
				if bytes.HasSuffix(k, serial) {
					keys = append(keys, bytes.Clone(k))
				}
				return nil
			})
			for _, k := range keys {
				rec := new(storev1.Certificate)
				if err := proto.Unmarshal(b.Get(k), rec); err != nil {
					return err
				}
				if rec.Revocation == nil {
					continue
				}
				rec.Revocation.InvalidityDate = timestamppb.New(at)
				v, err := proto.Marshal(rec)
				if err != nil {
					return err
				}
				if err := b.Put(k, v); err != nil {
					return err
				}
				planted++
			}
		}
		return nil
	})
	if err != nil || planted != 2 {
		t.Fatalf("planting the invalidityDate: %d records, %v", planted, err)
	}
}

// TestAttackEventIDReuse: a municipal system (or a replayed, edited feed)
// reuses an event id for another holder and another kind. Before, the CA
// answered with the first event's result as a replay and revoked nothing,
// silently. Now the reuse is AlreadyExists naming the event id, changes
// nothing, and an exact replay is still answered as one (R-R1).
func TestAttackEventIDReuse(t *testing.T) {
	pc := newPrivateCA(t, "")
	p := startCA(t, pc.config)
	cl := p.client(t)
	events := cav1.NewEventsClient(p.conn(t))
	ctx := context.Background()
	signA, _ := issuePair(t, cl, "ATT-E1")
	signB, authB := issuePair(t, cl, "ATT-E2")
	effective := time.Now().Format(time.RFC3339)

	move := &cav1.ReportEventRequest{EventId: "feed-42", MunicipalityCode: kiyose.Code, HolderId: "ATT-E1",
		Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE, ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS},
		Cause: cav1.ChangeCause_CHANGE_CAUSE_MOVE, EffectiveTime: effective}
	first, err := events.ReportEvent(ctx, move)
	if err != nil || len(first.Revoked) != 1 || first.Revoked[0].Serial != signA.Serial {
		t.Fatalf("the first event: %v %v", first, err)
	}
	again, err := events.ReportEvent(ctx, move)
	if err != nil || !again.Replayed || len(again.Revoked) != 1 || again.Revoked[0].Serial != signA.Serial {
		t.Fatalf("an exact replay: %v %v; want the first result, replayed", again, err)
	}

	for name, req := range map[string]*cav1.ReportEventRequest{
		"another holder and kind": {EventId: "feed-42", MunicipalityCode: kiyose.Code, HolderId: "ATT-E2",
			Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: effective},
		"the same holder, another kind": {EventId: "feed-42", MunicipalityCode: kiyose.Code, HolderId: "ATT-E1",
			Kind: cav1.EventKind_EVENT_KIND_LOSS_REPORT, EffectiveTime: effective},
		"another effective time": {EventId: "feed-42", MunicipalityCode: kiyose.Code, HolderId: "ATT-E1",
			Kind: cav1.EventKind_EVENT_KIND_RECORD_CHANGE, ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS},
			Cause: cav1.ChangeCause_CHANGE_CAUSE_MOVE, EffectiveTime: time.Now().Add(-time.Minute).Format(time.RFC3339)},
	} {
		resp, err := events.ReportEvent(ctx, req)
		refusedNaming(t, name, err, codes.AlreadyExists, "event_id", "feed-42", "R-R1")
		if resp != nil {
			t.Errorf("%s: answered %v", name, resp)
		}
	}
	for _, c := range []*cav1.Certificate{signB, authB} {
		got, err := cl.GetCertificate(ctx, &cav1.GetCertificateRequest{Serial: c.Serial})
		if err != nil || got.GetCertificate().GetStatus() != cav1.Status_STATUS_VALID {
			t.Errorf("%s is %v %v after the refused reuse, want VALID", c.Serial, got.GetCertificate().GetStatus(), err)
		}
	}
	p.stop(t)
}

// TestAttackEventUnknownHolder: an event naming a holder the CA never
// issued to in that municipality was accepted and audited as applied.
// Now it is NotFound naming holder_id, and records nothing: the same event
// id, later used for a known holder, applies.
func TestAttackEventUnknownHolder(t *testing.T) {
	pc := newPrivateCA(t, "")
	p := startCA(t, pc.config)
	cl := p.client(t)
	events := cav1.NewEventsClient(p.conn(t))
	ctx := context.Background()
	sign, auth := issuePair(t, cl, "ATT-U1")
	effective := time.Now().Format(time.RFC3339)

	for name, req := range map[string]*cav1.ReportEventRequest{
		"never issued to": {EventId: "death-1", MunicipalityCode: kiyose.Code, HolderId: "ATT-NOBODY",
			Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: effective},
		"a holder of another municipality": {EventId: "death-1", MunicipalityCode: "13101", HolderId: "ATT-U1",
			Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: effective},
	} {
		_, err := events.ReportEvent(ctx, req)
		refusedNaming(t, name, err, codes.NotFound, "holder_id", "R-R1")
	}
	resp, err := events.ReportEvent(ctx, &cav1.ReportEventRequest{EventId: "death-1", MunicipalityCode: kiyose.Code, HolderId: "ATT-U1",
		Kind: cav1.EventKind_EVENT_KIND_DEATH, EffectiveTime: effective})
	if err != nil || resp.Replayed || len(resp.Revoked) != 2 {
		t.Fatalf("the event for the known holder, with the id a refused one used: %v %v; want both revoked now", resp, err)
	}
	for _, c := range []*cav1.Certificate{sign, auth} {
		got, _ := cl.GetCertificate(ctx, &cav1.GetCertificateRequest{Serial: c.Serial})
		if got.GetCertificate().GetStatus() != cav1.Status_STATUS_REVOKED {
			t.Errorf("%s is %v, want REVOKED", c.Serial, got.GetCertificate().GetStatus())
		}
	}
	p.stop(t)
}
