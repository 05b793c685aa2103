package ops_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
)

// Renewal notices (seed 002, R-V3): issued on 2026-11-21, a holder born
// on 02-10 expires 2031-02-10 (window opens 2030-11-11), one born on
// 12-01 expires 2030-12-01 (window opens 2030-09-02), one born on 06-15
// expires 2031-06-15 (window opens 2031-03-16). On 2030-09-05, "3mo"
// reaches 2030-12-05: the open window and the one opening 11-11, not
// 06-15's; the other municipality's and the revoked certificates never.
func TestListRenewalNotices(t *testing.T) {
	h := start(t, tokenRecords)
	feb := h.issue(t, "13221", "holder-feb", "1990-02-10")
	dec := h.issue(t, "13221", "holder-dec", "1990-12-01")
	jun := h.issue(t, "13221", "holder-jun", "1990-06-15")
	h.issue(t, "13222", "holder-other", "1990-12-01")
	revoked := h.issue(t, "13221", "holder-revoked", "1990-12-02")
	for _, c := range revoked {
		if _, err := h.ca.Revoke(context.Background(), ca.SerialHex(c.Serial), 1, ""); err != nil {
			t.Fatal(err)
		}
	}
	h.setDate(t, "2030-09-05")

	serials := func(certs ...[]*storev1.Certificate) []string {
		var out []string
		for _, cs := range certs {
			var group []string
			for _, c := range cs {
				group = append(group, ca.SerialHex(c.Serial))
			}
			// Same window: by serial.
			slices.SortFunc(group, func(a, b string) int { return cmpSerial(a, b) })
			out = append(out, group...)
		}
		return out
	}
	list := func(t *testing.T, within string) []*opsv1.RenewalNotice {
		t.Helper()
		got, err := h.ops.ListRenewalNotices(h.ctx, &opsv1.ListRenewalNoticesRequest{MunicipalityCode: "13221", Within: within})
		if err != nil {
			t.Fatal(err)
		}
		return got.Notices
	}
	for _, c := range []struct {
		within string
		want   []string
	}{
		{"3mo", serials(dec, feb)},
		{"2160h", serials(dec, feb)}, // 90 days: 2030-12-04
		{"1mo", serials(dec)},
		{"12mo", serials(dec, feb, jun)},
	} {
		t.Run(c.within, func(t *testing.T) {
			got := list(t, c.within)
			var gotSerials []string
			for _, n := range got {
				gotSerials = append(gotSerials, n.Serial)
			}
			if !slices.Equal(gotSerials, c.want) {
				t.Fatalf("within %s: %v, want %v", c.within, gotSerials, c.want)
			}
		})
	}
	n := list(t, "3mo")[0]
	if n.HolderId != "holder-dec" || n.Profile != opsv1.Profile(dec[0].Profile) && n.Profile != opsv1.Profile(dec[1].Profile) ||
		n.Expiry != "2030-12-01T23:59:59+09:00" || n.WindowOpens != "2030-09-02T00:00:00+09:00" {
		t.Fatalf("notice %v", n)
	}
	// Expired certificates are past their window.
	h.setDate(t, "2030-12-02")
	if got := list(t, "1mo"); len(got) != 2 || got[0].HolderId != "holder-feb" || got[1].HolderId != "holder-feb" {
		t.Fatalf("after 2030-12-01 expired, 1mo (to 2031-01-02) lists %v, want holder-feb's open window only", got)
	}

	for _, c := range []struct{ municipality, within, field string }{
		{"1322", "3mo", "municipality.code"},
		{"99001", "3mo", "municipality.code"},
		{"13221", "13mo", "within"},
		{"13221", "0mo", "within"},
		{"13221", "03mo", "within"},
		{"13221", "-1h", "within"},
		{"13221", "9000h", "within"},
		{"13221", "", "within"},
		{"13221", strings.Repeat("1", 40) + "mo", "within"},
	} {
		t.Run(fmt.Sprintf("refused %s %s", c.municipality, c.within[:min(len(c.within), 10)]), func(t *testing.T) {
			_, err := h.ops.ListRenewalNotices(h.ctx, &opsv1.ListRenewalNoticesRequest{MunicipalityCode: c.municipality, Within: c.within})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("%v, want InvalidArgument naming %s", err, c.field)
			}
		})
	}
}

// cmpSerial orders hex serials by value.
func cmpSerial(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// The operator lists responder certificates and revokes one: audited with
// their name, idempotent, its key never certified again; a serial that is
// not hex, too long or unknown is refused naming the field.
func TestResponders(t *testing.T) {
	h := start(t, tokenRecords)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now()
	req := ca.ResponderRequest{Issuer: "sign-g1", PublicKey: &key.PublicKey, NotBefore: now, NotAfter: now.Add(24 * time.Hour), Replica: "replica-1"}
	if _, err := h.ca.CertifyResponder(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	got, err := h.ops.ListResponders(h.ctx, &opsv1.ListRespondersRequest{})
	if err != nil || len(got.Responders) != 1 {
		t.Fatalf("ListResponders: %v, %v", got, err)
	}
	r := got.Responders[0]
	if r.Issuer != "sign-g1" || r.Replica != "replica-1" || r.State != "ISSUED" || r.RevokedAt != "" || !strings.HasPrefix(r.Key, "sha256:") {
		t.Fatalf("responder %v", r)
	}
	for _, c := range []struct {
		serial string
		code   codes.Code
	}{
		{"zz", codes.InvalidArgument},
		{strings.Repeat("1", 41), codes.InvalidArgument},
		{"", codes.InvalidArgument},
		{"0x7fffffff", codes.NotFound},
	} {
		_, err := h.ops.RevokeResponder(h.ctx, &opsv1.RevokeResponderRequest{Serial: c.serial})
		if status.Code(err) != c.code || !strings.Contains(err.Error(), "serial") {
			t.Fatalf("RevokeResponder(%q): %v, want %s naming serial", c.serial, err, c.code)
		}
	}
	head, _, _ := h.store.AuditHead()
	for range 2 {
		rev, err := h.ops.RevokeResponder(h.ctx, &opsv1.RevokeResponderRequest{Serial: "0x" + strings.ToUpper(r.Serial)})
		if err != nil || rev.Responder.Serial != r.Serial || rev.Responder.RevokedAt == "" {
			t.Fatalf("RevokeResponder: %v, %v", rev, err)
		}
	}
	var revokes []string
	if _, err := h.store.AuditRecordsFrom(head+1, 100, func(rec *storev1.AuditRecord) error {
		revokes = append(revokes, rec.Actor+" "+rec.Action)
		return nil
	}); err != nil || !slices.Equal(revokes, []string{"local:alice ocsp.responder.revoke"}) {
		t.Fatalf("audit records of two revocations: %v (%v), want one, by the operator", revokes, err)
	}
	if _, err := h.ca.CertifyResponder(context.Background(), req); err == nil {
		t.Fatal("a revoked responder's key was certified again")
	}
}
