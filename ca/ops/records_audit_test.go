package ops_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/store"
)

// checkpoint signs a checkpoint of the log as it is, witnessed by the HSM,
// as the running CA does every 100 records or 10 seconds.
func (h *harness) checkpoint(t *testing.T) {
	t.Helper()
	key, err := audit.Key(context.Background(), h.tok, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := audit.NewCheckpointer(audit.CheckpointerConfig{Store: h.store, Signer: key, Witness: h.tok})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// An insider rewrites one audit record in the store file of a stopped CA
// (bbolt, chained as before, the store's head untouched). shomei-ca
// refuses to start on such a log (cmd/shomei-ca startAuditCheckpoints
// runs the same audit.Check), so this runs VerifyAudit at the package
// level, through real gRPC on the real store and token: it names that
// record's seq, and refuses to add to the broken log.
func TestVerifyAuditNamesTheRewrittenRecord(t *testing.T) {
	h := start(t, tokenAudit)
	for i := range 3 {
		h.issue(t, "13221", fmt.Sprintf("holder-%d", i), "1990-06-15")
	}
	h.checkpoint(t)
	got, err := h.ops.VerifyAudit(h.ctx, &opsv1.VerifyAuditRequest{})
	if err != nil || !got.Ok || got.Records < 4 || got.Checkpoints < 1 || got.FirstBadSeq != 0 {
		t.Fatalf("VerifyAudit of an intact log: %v, %v", got, err)
	}
	hash, err := h.store.AuditRecordHash(got.Records)
	if err != nil || got.HeadSeq != got.Records || got.HeadHash != hex.EncodeToString(hash[:]) {
		t.Fatalf("VerifyAudit head %d %s, the store's record %d %x (%v)", got.HeadSeq, got.HeadHash, got.Records, hash, err)
	}
	// Its own record (audit.verify, by the operator) follows.
	if n, _, _ := h.store.AuditHead(); n != got.Records+1 {
		t.Fatalf("VerifyAudit was not audited: head %d after %d records", n, got.Records)
	}

	bad := got.Records / 2
	h.stop()
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(h.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		k := binary.BigEndian.AppendUint64(nil, bad)
		var rec storev1.AuditRecord
		if err := proto.Unmarshal(b.Get(k), &rec); err != nil {
			return err
		}
		rec.Actor = "operator:mallory"
		v, err := proto.MarshalOptions{Deterministic: true}.Marshal(&rec)
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if h.store, err = store.Open(h.path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	h.serve(t)

	got, err = h.ops.VerifyAudit(h.ctx, &opsv1.VerifyAuditRequest{})
	if err != nil {
		t.Fatalf("VerifyAudit of a tampered log: %v, want an answer naming the record", err)
	}
	if got.Ok || got.FirstBadSeq != bad || !strings.Contains(got.Problem, fmt.Sprintf("record %d", bad)) {
		t.Fatalf("VerifyAudit of a log whose record %d was rewritten: %v", bad, got)
	}
	if _, err := h.store.VerifyAudit(); !errors.Is(err, store.ErrAuditTampered) {
		t.Fatalf("the store's own chain check after the tamper: %v", err)
	}
	// The finding is in the log, after the fault, with who found it.
	head, _, err := h.store.AuditHead()
	if err != nil {
		t.Fatal(err)
	}
	var last *storev1.AuditRecord
	if _, err := h.store.AuditRecordsFrom(head, 1, func(r *storev1.AuditRecord) error { last = r; return nil }); err != nil {
		t.Fatal(err)
	}
	if last.Action != "audit.verify" || last.Actor != "local:alice" || !strings.Contains(fmt.Sprint(last.Fields), fmt.Sprintf("value:\"%d\"", bad)) {
		t.Fatalf("the failed verification's record: %v", last)
	}
	if !strings.Contains(h.log.String(), fmt.Sprintf("first_bad_seq=%d", bad)) {
		t.Fatalf("the CA's log does not say the audit log failed:\n%s", h.log)
	}
}

// ExportAudit streams the records at or after since, oldest first, at
// most 1000 a message, as they are stored; a bad since is refused naming
// the field, and the export itself is audited with the operator's name.
func TestExportAudit(t *testing.T) {
	h := start(t, tokenRecords)
	base := h.clock.Now()
	var recs []*storev1.AuditRecord
	for i := range 2500 {
		recs = append(recs, &storev1.AuditRecord{Time: timestamppb.New(base.Add(time.Duration(i) * time.Second)),
			Actor: "ops-test", Action: "test.record", Fields: []*storev1.AuditField{{Key: "i", Value: fmt.Sprint(i)}}})
	}
	if err := h.store.AppendAudit(recs...); err != nil {
		t.Fatal(err)
	}
	head, _, _ := h.store.AuditHead()
	export := func(t *testing.T, since string) ([]*opsv1.AuditRecord, []int, error) {
		t.Helper()
		stream, err := h.ops.ExportAudit(h.ctx, &opsv1.ExportAuditRequest{Since: since})
		if err != nil {
			return nil, nil, err
		}
		var all []*opsv1.AuditRecord
		var sizes []int
		for {
			m, err := stream.Recv()
			if err == io.EOF {
				return all, sizes, nil
			}
			if err != nil {
				return all, sizes, err
			}
			all = append(all, m.Records...)
			sizes = append(sizes, len(m.Records))
		}
	}

	t.Run("all", func(t *testing.T) {
		all, sizes, err := export(t, "")
		if err != nil || uint64(len(all)) != head {
			t.Fatalf("export: %d records (%v), want the %d there were when it began", len(all), err, head)
		}
		if len(sizes) < 3 {
			t.Fatalf("%d records in %d messages", len(all), len(sizes))
		}
		for i, n := range sizes {
			if n == 0 || n > 1000 {
				t.Fatalf("message %d carries %d records", i, n)
			}
		}
		for i, r := range all {
			if r.Seq != uint64(i+1) {
				t.Fatalf("record %d has seq %d: not oldest first", i, r.Seq)
			}
		}
		var stored *storev1.AuditRecord
		if _, err := h.store.AuditRecordsFrom(2, 1, func(r *storev1.AuditRecord) error { stored = r; return nil }); err != nil {
			t.Fatal(err)
		}
		if got := all[1]; got.Actor != stored.Actor || got.Action != stored.Action || got.PrevHash != hex.EncodeToString(stored.PrevHash) ||
			got.Time != stored.Time.AsTime().UTC().Format(time.RFC3339Nano) {
			t.Fatalf("record 2 exported as %v, stored as %v", got, stored)
		}
	})
	t.Run("since", func(t *testing.T) {
		since := base.Add(2000 * time.Second)
		all, _, err := export(t, since.Format(time.RFC3339))
		if err != nil || len(all) != 500 {
			t.Fatalf("export since: %d records, %v; want the last 500 test records", len(all), err)
		}
		if all[0].Fields[0].Value != "2000" {
			t.Fatalf("the first record since %s is %v", since, all[0])
		}
	})
	for _, since := range []string{"yesterday", "2026-11-21", "1999-12-31T23:59:59Z", "2099-01-01T00:00:00Z", strings.Repeat("9", 100)} {
		t.Run("refused "+since[:min(len(since), 20)], func(t *testing.T) {
			_, _, err := export(t, since)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "since") {
				t.Fatalf("since %q: %v, want InvalidArgument naming since", since, err)
			}
		})
	}
	var audited bool
	if _, err := h.store.AuditRecordsFrom(head+1, 100, func(r *storev1.AuditRecord) error {
		audited = audited || (r.Action == "audit.export" && r.Actor == "local:alice")
		return nil
	}); err != nil || !audited {
		t.Fatalf("the exports were not audited with the operator's name (%v)", err)
	}
}
