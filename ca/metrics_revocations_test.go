package ca

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/internal/metricstest"
)

// TestRevocationMetrics: shomei_ca_revocations_total counts each
// certificate once, when it is revoked, by reason and source; replays and
// revocations of what was already revoked count nothing; each event is
// counted by kind and outcome.
func TestRevocationMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := newTestCA(t, caOptions{metrics: reg})
	ctx := context.Background()
	h := issueBoth(t, c)

	loss := kind(EventLossReport)(h)
	for range 2 { // the second is a replay
		if _, err := c.ReportEvent(ctx, loss); err != nil {
			t.Fatal(err)
		}
	}
	// The counter revokes what the loss report revoked already.
	if _, err := c.Revoke(ctx, h.serial[ProfileSign], reasonKeyCompromise, ""); err != nil {
		t.Fatal(err)
	}
	// Not an R-R1 event: refused, under "unknown".
	bad := loss
	bad.ID, bad.Kind = "event-2", EventKind(99)
	if _, err := c.ReportEvent(ctx, bad); err == nil {
		t.Fatal("an event of kind 99 was accepted")
	}
	// A record change of none of the basic 4 info ends nothing (R-R1).
	none := kind(EventRecordChange)(h)
	none.ID = "event-3"
	if _, err := c.ReportEvent(ctx, none); err != nil {
		t.Fatal(err)
	}

	got := metricstest.Gather(t, reg)
	want := map[string]float64{
		`shomei_ca_revocations_total{reason="keyCompromise",source="loss_report"}`: 2,
		`shomei_ca_events_total{kind="loss_report",outcome="applied"}`:             1,
		`shomei_ca_events_total{kind="loss_report",outcome="duplicate"}`:           1,
		`shomei_ca_events_total{kind="unknown",outcome="refused"}`:                 1,
		`shomei_ca_events_total{kind="record_change",outcome="nothing_to_revoke"}`: 1,
	}
	for series, v := range want {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	for series := range got {
		if _, ok := want[series]; !ok && (strings.HasPrefix(series, "shomei_ca_revocations_total") || strings.HasPrefix(series, "shomei_ca_events_total")) {
			t.Errorf("unexpected series %s = %v", series, got[series])
		}
	}
}

func TestEventOutcomeAndKindNames(t *testing.T) {
	for k := EventRecordChange; k <= EventRecordError; k++ {
		if n := EventKindName(k); n == "unknown" || n == "" {
			t.Errorf("event kind %d has no name", k)
		}
	}
	if n := EventKindName(EventUnspecified); n != "unknown" {
		t.Errorf("EventKindName(unspecified) = %q, want unknown", n)
	}
}

// TestCompromiseRevocationsCounted (R-K2): an issuer compromise counts each
// certificate it revokes under cACompromise and compromise, and a second
// run, which revokes nothing more, counts nothing.
func TestCompromiseRevocationsCounted(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := newTestCA(t, caOptions{metrics: reg})
	for i := range 3 {
		req := request(t, ProfileSign)
		req.Holder.ID = fmt.Sprintf("holder-m%d", i)
		c.mustIssue(t, ceremonyDay, false, req)
	}
	c.setDate(t, "2027-01-05")
	by := Approval{ProposalID: "0123456789abcdef", Proposer: "operator:alice", Approvers: []string{"operator:alice", "operator:bob"}}
	for range 2 {
		if _, err := c.Compromise(context.Background(), ProfileSign, 1, time.Time{}, by, nil); err != nil {
			t.Fatal(err)
		}
	}
	series := `shomei_ca_revocations_total{reason="cACompromise",source="compromise"}`
	if got := metricstest.Gather(t, reg)[series]; got != 3 {
		t.Errorf("%s = %v, want 3", series, got)
	}
}
