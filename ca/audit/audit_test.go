package audit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/internal/testenv/open"
)

func appendN(t *testing.T, st *store.Store, n int) {
	t.Helper()
	for range n {
		if err := st.AppendAudit(&storev1.AuditRecord{Actor: "test", Action: "test.record"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckpoints: a checkpoint covers the log up to its head; records
// after it are the unsigned tail; a checkpoint signed by another key does
// not verify.
func TestCheckpoints(t *testing.T) {
	st := open.Store(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cp, err := audit.NewCheckpointer(audit.CheckpointerConfig{Store: st, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cp.Checkpoint(ctx); err != nil { // empty log: nothing to sign
		t.Fatal(err)
	}
	appendN(t, st, 3)
	if err := cp.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cp.Checkpoint(ctx); err != nil { // nothing new: no second checkpoint
		t.Fatal(err)
	}
	appendN(t, st, 2)
	r, err := audit.Verify(st, key.Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Records != 5 || r.Checkpoints != 1 || r.Signed != 3 || r.UnsignedTail() != 2 {
		t.Errorf("report %+v; want 5 records, 1 checkpoint at 3, a tail of 2", r.AuditStatus)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := audit.Verify(st, other.Public(), nil); !errors.Is(err, store.ErrAuditTampered) {
		t.Errorf("verified with another key: %v", err)
	}
	if _, err := audit.Verify(st, nil, nil); !errors.Is(err, store.ErrAuditTampered) {
		t.Errorf("checkpoints with no audit key: %v", err)
	}
}

// TestRefusalsRateLimited: a flood of one refusal writes one audit record
// per window, with the count of those suppressed, and counts them all.
func TestRefusalsRateLimited(t *testing.T) {
	st := open.Store(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	r, err := audit.NewRefusals(audit.RefusalsConfig{Store: st, Metrics: reg, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	f := audit.Refusal{Caller: "municipal:kiyose", Method: "/shomei.ca.v1.CertificateAuthority/Issue", Code: "InvalidArgument", Rule: "R-P1", Field: "profiles"}
	for range 1000 {
		r.Record(f)
	}
	now = now.Add(audit.DefaultRefusalWindow)
	r.Record(f)
	var recs []*storev1.AuditRecord
	st.AuditRecords(func(a *storev1.AuditRecord) error { recs = append(recs, a); return nil })
	if len(recs) != 2 || recs[0].Actor != "municipal:kiyose" || recs[1].Fields[4].Value != "999" {
		t.Fatalf("%d audit records (%v); want 2, the second saying 999 were suppressed", len(recs), recs)
	}
	mfs, _ := reg.Gather()
	if len(mfs) != 1 || mfs[0].Metric[0].Counter.GetValue() != 1001 {
		t.Errorf("metrics %v; want 1001 refusals counted", mfs)
	}
}

// TestAttackRefusalFieldFlood: the window is per caller, method, code and
// rule, as documented, but was kept per field too, so a compromised
// municipal system that made each refused Issue fail at another index
// (address_substitutions[0..199], name_substitutions[0..100], …) wrote an
// audit record, with its fsync, for every one: hundreds a minute from one
// client, growing the log that every start verifies. Now one record per
// window, naming the first field, counts the rest.
func TestAttackRefusalFieldFlood(t *testing.T) {
	st := open.Store(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r, err := audit.NewRefusals(audit.RefusalsConfig{Store: st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		r.Record(audit.Refusal{Caller: "municipal:kiyose", Method: "/shomei.ca.v1.CertificateAuthority/Issue", Code: "InvalidArgument",
			Rule: "R-P5", Field: fmt.Sprintf("address_substitutions[%d].position", i)})
	}
	n := 0
	st.AuditRecords(func(*storev1.AuditRecord) error { n++; return nil })
	if n != 1 {
		t.Errorf("200 refusals differing only in the field index wrote %d audit records in one window; want 1", n)
	}
}
