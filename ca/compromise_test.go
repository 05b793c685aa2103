package ca

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// TestCompromiseChecks: what CheckCompromise refuses, naming the field.
func TestCompromiseChecks(t *testing.T) {
	c := newTestCA(t, caOptions{})
	made := c.IssuerCertificate(ProfileSign, 1).NotBefore
	for _, tc := range []struct {
		name  string
		p     Profile
		gen   uint32
		since time.Time
		want  refusal
	}{
		{"no profile", 0, 1, time.Time{}, refusal{KindInvalid, "action.compromise.profile", "R-K2", "SIGN or AUTH"}},
		{"generation 0", ProfileSign, 0, time.Time{}, refusal{KindInvalid, "action.compromise.generation", "R-K2", "1 or more"}},
		{"unknown generation", ProfileSign, 9, time.Time{}, refusal{KindNotFound, "action.compromise.generation", "R-K2", "no generation 9"}},
		{"future", ProfileSign, 1, c.clock.Add(time.Hour), refusal{KindInvalid, "action.compromise.invalid_since", "R-K2", "future"}},
		{"before the key", ProfileSign, 1, made.Add(-time.Hour), refusal{KindInvalid, "action.compromise.invalid_since", "R-K2", "before sign-g1 was made"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.check(t, c.CheckCompromise(tc.p, tc.gen, tc.since))
		})
	}
	if err := c.CheckCompromise(ProfileSign, 1, made); err != nil {
		t.Errorf("a valid compromise: %v", err)
	}
}

// TestCompromiseInBatches: an issuer compromise (R-K2) through the CA,
// batch by batch. Stopped after its first batch (the CA's context ends), the
// generation already issues nothing, though this process's CA was never
// reloaded (the store refuses); run again, it finishes: every certificate
// of the generation revoked with cACompromise once, progress reported up to
// total of total, and the CRL/OCSP publishers told after every batch.
func TestCompromiseInBatches(t *testing.T) {
	c := newTestCA(t, caOptions{})
	defer func(n int) { compromiseBatch = n }(compromiseBatch)
	compromiseBatch = 2
	notified := 0
	c.cfg.OnStatusChange = func() { notified++ }
	const holders = 7
	var signs []string
	for i := range holders {
		req := request(t, ProfileSign)
		req.Holder.ID = fmt.Sprintf("holder-b%d", i)
		out := c.mustIssue(t, ceremonyDay, false, req)
		signs = append(signs, serialHex(out.Certificates[0]))
	}
	auth := c.mustIssue(t, ceremonyDay, false, request(t, ProfileAuth))
	c.setDate(t, "2027-01-05")
	by := Approval{ProposalID: "0123456789abcdef", Proposer: "operator:alice", Approvers: []string{"operator:alice", "operator:bob"}}

	ctx, cancel := context.WithCancel(context.Background())
	var seen [][2]uint64
	progress := func(done, total uint64) {
		seen = append(seen, [2]uint64{done, total})
		if len(seen) == 2 {
			cancel()
		}
	}
	if _, err := c.Compromise(ctx, ProfileSign, 1, time.Time{}, by, progress); !errors.Is(err, context.Canceled) {
		t.Fatalf("Compromise stopped half way: %v, want context.Canceled", err)
	}
	if seen[0] != [2]uint64{0, holders} || seen[1] != [2]uint64{2, holders} {
		t.Errorf("progress %v; want 0 of %d, then 2 of %d", seen, holders, holders)
	}
	req := request(t, ProfileSign)
	req.Holder.ID = "holder-b99"
	_, err := c.Issue(context.Background(), req)
	refusal{KindPrecondition, "profiles[0].profile", "R-K2", "compromised"}.check(t, err)

	seen = nil
	res, err := c.Compromise(context.Background(), ProfileSign, 1, time.Time{}, by, func(done, total uint64) { seen = append(seen, [2]uint64{done, total}) })
	if err != nil || res.Revoked != holders-2 || res.AlreadyRevoked != 2 {
		t.Fatalf("Compromise again = %+v, %v; want %d revoked, 2 already", res, err, holders-2)
	}
	if last := seen[len(seen)-1]; last != [2]uint64{holders, holders} || seen[0] != [2]uint64{2, holders} {
		t.Errorf("progress %v; want from 2 of %d to %d of %d", seen, holders, holders, holders)
	}
	if notified < holders/compromiseBatch+1 {
		t.Errorf("publishers told %d times; want after every batch that revoked", notified)
	}
	for _, s := range signs {
		rec, err := c.Certificate(s)
		if err != nil || rec.Revocation == nil || rec.Revocation.Reason != reasonCACompromise {
			t.Errorf("%s: %v, %v; want revoked cACompromise", s, rec.GetRevocation(), err)
		}
	}
	if rec, err := c.Certificate(serialHex(auth.Certificates[0])); err != nil || rec.Revocation != nil {
		t.Errorf("AUTH: %v, %v; want untouched", rec.GetRevocation(), err)
	}
	keys, err := c.store.Issuers()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Profile == ProfileSign && k.Generation == 1 && k.State != storev1.KeyState_KEY_STATE_COMPROMISED {
			t.Errorf("sign-g1 is %v", k.State)
		}
	}
}
