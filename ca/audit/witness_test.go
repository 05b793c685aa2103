package audit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/testenv/open"
)

// memHSM keeps data objects as a token would, and can fail writes.
type memHSM struct {
	mu      sync.Mutex
	objs    []hsm.DataObject
	failing error
}

func (m *memHSM) ReadData(_ context.Context, label string) ([]hsm.DataObject, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []hsm.DataObject
	for _, o := range m.objs {
		if o.Label == label {
			out = append(out, o)
		}
	}
	return out, nil
}

func (m *memHSM) WriteData(_ context.Context, obj hsm.DataObject) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing != nil {
		return m.failing
	}
	m.objs = slices.DeleteFunc(m.objs, func(o hsm.DataObject) bool { return o.Label == obj.Label && o.Application == obj.Application })
	m.objs = append(m.objs, obj)
	return nil
}

// snapshot copies the objects; add puts objects back, as a crash between
// creating the new one and destroying the old one leaves both.
func (m *memHSM) snapshot() []hsm.DataObject {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.objs)
}

func (m *memHSM) add(objs ...hsm.DataObject) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs = append(m.objs, objs...)
}

// TestWitness: every checkpoint is witnessed in the HSM; a log truncated
// before the witness, or rewritten at its record, does not verify, and the
// checkpointer refuses to sign over either; a witness behind the log (a
// crash before it was written) verifies and catches up; of two witness
// objects the newer counts; an unreadable one is ignored unless it is the
// only one; an accepted rollback is audited and moves the witness back.
func TestWitness(t *testing.T) {
	ctx := context.Background()
	st := open.Store(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := &memHSM{}
	newCP := func() *audit.Checkpointer {
		cp, err := audit.NewCheckpointer(audit.CheckpointerConfig{Store: st, Signer: key, Witness: h})
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	read := func() *audit.Witness {
		t.Helper()
		w, err := audit.ReadWitness(ctx, h, key.Public())
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := read(); w != nil {
		t.Fatalf("a witness before any checkpoint: %v", w)
	}
	appendN(t, st, 3)
	if err := newCP().Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if w := read(); w == nil || w.Seq() != 3 || w.Counter != 1 {
		t.Fatalf("witness %v; want record 3, counter 1", w)
	}
	backup := h.snapshot()

	// The HSM is unreachable when the next checkpoint is signed: the
	// store has it, the witness stays behind. That verifies, and the
	// next checkpoint catches the witness up.
	appendN(t, st, 2)
	h.failing = errors.New("HSM away")
	cp := newCP()
	if err := cp.Checkpoint(ctx); err == nil {
		t.Fatal("a checkpoint whose witness failed reported success")
	}
	h.failing = nil
	if r, err := audit.Verify(st, key.Public(), read()); err != nil || r.Signed != 5 || r.Witnessed != 3 {
		t.Fatalf("witness behind the log: %+v, %v", r, err)
	}
	if err := cp.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if w := read(); w.Seq() != 5 || w.Counter != 2 {
		t.Fatalf("witness %v (counter %d); want record 5, counter 2", w, w.Counter)
	}
	// A crash while the witness was replaced leaves the old object too,
	// and a damaged one: the newest that verifies counts.
	h.add(backup...)
	h.add(hsm.DataObject{Label: audit.WitnessLabel, Application: "x", Value: []byte("garbage")})
	if w := read(); w.Seq() != 5 {
		t.Fatalf("witness %v; want the newest, of record 5", w)
	}

	// Truncation: a log shorter than the witness, from the store's
	// point of view an intact log.
	short := open.Store(t)
	appendN(t, short, 4)
	_, err := audit.Verify(short, key.Public(), read())
	var rb *audit.RollbackError
	if !errors.As(err, &rb) || !errors.Is(err, store.ErrAuditTampered) || rb.Witnessed != 5 || rb.LastCheckpoint != 0 || rb.Records != 4 {
		t.Fatalf("truncated log: %v; want a RollbackError naming records 5 and 0", err)
	}
	other := &memHSM{objs: h.snapshot()}
	cpShort, _ := audit.NewCheckpointer(audit.CheckpointerConfig{Store: short, Signer: key, Witness: other})
	if err := cpShort.Checkpoint(ctx); !errors.Is(err, audit.ErrRolledBack) {
		t.Errorf("checkpoint over a truncated log: %v; want refused", err)
	}
	// Rewritten: the record the HSM witnessed is another one.
	appendN(t, short, 2)
	if _, err := audit.Verify(short, key.Public(), read()); !errors.Is(err, store.ErrAuditTampered) || !strings.Contains(err.Error(), "rewritten") {
		t.Errorf("rewritten log: %v; want tampering at the witnessed record", err)
	}
	if err := cpShort.Checkpoint(ctx); err == nil || !strings.Contains(err.Error(), "rewritten") {
		t.Errorf("checkpoint over a rewritten log: %v; want refused", err)
	}

	// Another audit key's witness does not verify.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := audit.ReadWitness(ctx, &memHSM{objs: h.snapshot()[:1]}, otherKey.Public()); !errors.Is(err, audit.ErrWitnessUnreadable) {
		t.Errorf("a witness read with another key: %v", err)
	}

	// A restored backup, accepted: audited, signed, witnessed.
	restored := open.Store(t)
	appendN(t, restored, 3)
	cpRestored, _ := audit.NewCheckpointer(audit.CheckpointerConfig{Store: restored, Signer: key, Witness: h})
	old, err := cpRestored.AcceptRollback(ctx, "operator:alice")
	if err != nil || old.Seq() != 5 {
		t.Fatalf("AcceptRollback: %v, %v", old, err)
	}
	w := read()
	if w.Seq() != 4 || w.Counter != 3 {
		t.Fatalf("witness after the rollback %v (counter %d); want record 4, counter 3", w, w.Counter)
	}
	if _, err := audit.Verify(restored, key.Public(), w); err != nil {
		t.Errorf("the accepted log: %v", err)
	}
	if _, err := audit.Verify(st, key.Public(), w); err == nil || !strings.Contains(err.Error(), "rewritten") {
		t.Errorf("the abandoned branch: %v; want rewritten", err)
	}
	var last string
	restored.AuditRecords(func(r *storev1.AuditRecord) error {
		last = r.Actor + " " + r.Action
		if len(r.Fields) > 0 {
			last += " " + r.Fields[0].Value
		}
		return nil
	})
	if last != "operator:alice audit.rollback.accept 5" {
		t.Errorf("last audit record %q; want alice's accepted rollback of record 5", last)
	}
}

// TestWitnessUpgrade: a store whose checkpoints predate the witness gets
// one at the first checkpoint with the HSM, of its last checkpoint, even
// with no record to sign; a last checkpoint that another key signed is
// never witnessed.
func TestWitnessUpgrade(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name   string
		signer *ecdsa.PrivateKey // of the checkpoint before the upgrade
		ok     bool
	}{{"the audit key's checkpoint", key, true}, {"another key's checkpoint", nil, false}} {
		t.Run(tc.name, func(t *testing.T) {
			st := open.Store(t)
			appendN(t, st, 2)
			signer := tc.signer
			if signer == nil {
				signer, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			}
			before, _ := audit.NewCheckpointer(audit.CheckpointerConfig{Store: st, Signer: signer})
			if err := before.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			h := &memHSM{}
			cp, _ := audit.NewCheckpointer(audit.CheckpointerConfig{Store: st, Signer: key, Witness: h})
			err := cp.Checkpoint(ctx)
			w, rerr := audit.ReadWitness(ctx, h, key.Public())
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tc.ok != (err == nil) || tc.ok != (w != nil) {
				t.Fatalf("Checkpoint: %v, witness %v; want one: %v", err, w, tc.ok)
			}
			if tc.ok && (w.Seq() != 2 || w.Counter != 1) {
				t.Errorf("witness %v (counter %d); want record 2, counter 1", w, w.Counter)
			}
		})
	}
}

// TestWitnessSealed: a clean Close seals the log in the witness; a record
// appended after it, as someone without the HSM would (the store's own
// append, the chain intact), fails Verify and stops the next checkpoint;
// Open unseals a log nothing was appended to, so its writer may go on; and
// CloseOpen, for a stop whose writers may still run, leaves it open, as a
// crash does, where an unsigned tail is accepted.
func TestWitnessSealed(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newCP := func(st *store.Store, h *memHSM) *audit.Checkpointer {
		cp, err := audit.NewCheckpointer(audit.CheckpointerConfig{Store: st, Signer: key, Witness: h})
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	read := func(h *memHSM) *audit.Witness {
		w, err := audit.ReadWitness(ctx, h, key.Public())
		if err != nil || w == nil {
			t.Fatalf("ReadWitness = %v, %v", w, err)
		}
		return w
	}

	st, h := open.Store(t), &memHSM{}
	appendN(t, st, 3)
	if err := newCP(st, h).Close(ctx); err != nil {
		t.Fatal(err)
	}
	if w := read(h); !w.Sealed || w.Seq() != 3 {
		t.Fatalf("after Close the witness is %s; want sealed at record 3", w)
	}
	if _, err := audit.Verify(st, key.Public(), read(h)); err != nil {
		t.Fatalf("Verify of the sealed log: %v", err)
	}

	// A writer opens the sealed log through the HSM, appends, and seals
	// it again.
	cp := newCP(st, h)
	if err := cp.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if w := read(h); w.Sealed {
		t.Fatalf("after Open the witness is %s; want open", w)
	}
	appendN(t, st, 2)
	if err := cp.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if w := read(h); !w.Sealed || w.Seq() != 5 {
		t.Fatalf("after the writer's Close the witness is %s; want sealed at record 5", w)
	}

	// Appended without opening: found, and never signed over.
	appendN(t, st, 1)
	_, err := audit.Verify(st, key.Public(), read(h))
	if !errors.Is(err, store.ErrAuditTampered) || !strings.Contains(err.Error(), "sealed at record 5") {
		t.Fatalf("Verify of a record appended to the sealed log: %v", err)
	}
	if err := newCP(st, h).Checkpoint(ctx); err == nil {
		t.Fatal("a checkpoint was signed over a record appended to the sealed log")
	}

	// CloseOpen leaves the log open: a later record is an unsigned tail.
	st2, h2 := open.Store(t), &memHSM{}
	appendN(t, st2, 2)
	if err := newCP(st2, h2).CloseOpen(ctx); err != nil {
		t.Fatal(err)
	}
	if w := read(h2); w.Sealed {
		t.Fatalf("after CloseOpen the witness is %s; want open", w)
	}
	appendN(t, st2, 1)
	r, err := audit.Verify(st2, key.Public(), read(h2))
	if err != nil || r.UnsignedTail() != 1 {
		t.Fatalf("Verify after CloseOpen and one more record: %v, unsigned tail %d", err, r.UnsignedTail())
	}
}
