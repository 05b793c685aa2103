package audit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/store"
)

// TestCheckpointVerifiesSinceTheLast (R-K3): before it signs a checkpoint,
// the checkpointer checks the records since the last one and counts the
// check; a record rewritten behind the store's back after the last
// checkpoint stops the next one and counts a failure.
func TestCheckpointVerifiesSinceTheLast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca", "shomei.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	m := audit.NewVerifyMetrics()
	reg := prometheus.NewPedanticRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	checkpointer := func(st *store.Store) *audit.Checkpointer {
		cp, err := audit.NewCheckpointer(audit.CheckpointerConfig{Store: st, Signer: key, Metrics: m, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	values := func() (failures, last float64) {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			switch mf.GetName() {
			case "shomei_audit_verify_failures_total":
				failures = mf.Metric[0].GetCounter().GetValue()
			case "shomei_audit_last_verified_timestamp_seconds":
				last = mf.Metric[0].GetGauge().GetValue()
			}
		}
		return failures, last
	}
	ctx := context.Background()
	cp := checkpointer(st)
	appendN(t, st, 3)
	if err := cp.Checkpoint(ctx); err != nil { // the first: nothing before it to check
		t.Fatal(err)
	}
	if f, l := values(); f != 0 || l != 0 {
		t.Errorf("after the first checkpoint: %v failures, last verified %v; want 0, 0", f, l)
	}
	appendN(t, st, 2)
	if err := cp.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if f, l := values(); f != 0 || l != float64(now.Unix()) {
		t.Errorf("after the second checkpoint: %v failures, last verified %v; want 0, %d", f, l, now.Unix())
	}

	appendN(t, st, 2) // records 6 and 7
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	rewriteRecord(t, path, 6)
	if st, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now = now.Add(time.Minute)
	err = checkpointer(st).Checkpoint(ctx)
	if err == nil || !strings.Contains(err.Error(), "do not verify") {
		t.Fatalf("Checkpoint over a rewritten record: %v, want a refusal", err)
	}
	if f, l := values(); f != 1 || l != float64(now.Add(-time.Minute).Unix()) {
		t.Errorf("after the refused checkpoint: %v failures, last verified %v; want 1, unchanged", f, l)
	}
	if last, err := st.LastAuditCheckpoint(); err != nil || last.GetSeq() != 5 {
		t.Errorf("last checkpoint: %v, %v; want still record 5's", last.GetSeq(), err)
	}
}

// rewriteRecord changes the actor of audit record seq in the bbolt file
// at path, behind the store's back, as someone with the disk could.
func rewriteRecord(t *testing.T, path string, seq int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		c := b.Cursor()
		k, v := c.First()
		for range seq - 1 {
			k, v = c.Next()
		}
		var rec storev1.AuditRecord
		if err := proto.Unmarshal(v, &rec); err != nil {
			return err
		}
		rec.Actor = "someone-else"
		data, err := proto.Marshal(&rec)
		if err != nil {
			return err
		}
		return b.Put(append([]byte(nil), k...), data)
	})
	if err != nil {
		t.Fatal(err)
	}
}
