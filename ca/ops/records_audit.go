package ops

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/grpc"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/audit"
)

// Audit export bounds.
const (
	// ExportBatch is how many records one ExportAuditResponse carries at
	// most, and how many one read transaction reads.
	ExportBatch = 1000
	// exportSinceEarliest: a since before it is a mistake (the CA did
	// not exist).
	exportSinceEarliest = "2000-01-01T00:00:00Z"
	// exportSinceSlack: a since this far past now is a mistake too.
	exportSinceSlack = 24 * time.Hour
)

// Audit actions of the records part.
const (
	ActionAuditVerify = "audit.verify"
	ActionAuditExport = "audit.export"
	ActionStoreBackup = "store.backup"
	ActionNoticesList = "notices.list"
)

// VerifyAudit implements opsv1.OperationsServer: audit.Check, the check
// `shomeictl audit verify --offline` runs on a stopped CA, on the running
// CA's store and HSM. A log that does not verify is an answer (ok false,
// the first bad record), not an error. The unsigned tail (records after
// the last checkpoint) is normal while the CA runs. One at a time: it
// reads the whole log and every certificate.
func (r *Records) VerifyAudit(ctx context.Context, _ *opsv1.VerifyAuditRequest) (*opsv1.VerifyAuditResponse, error) {
	who, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	release, err := oneAtATime(r.verifies, "an audit verification")
	if err != nil {
		return nil, err
	}
	defer release()
	report, _, err := audit.Check(ctx, r.cfg.Store, r.cfg.Token)
	r.cfg.AuditMetrics.Record(r.cfg.Now(), err)
	fault, found := audit.FaultOf(err)
	if err != nil && !found {
		return nil, r.statusError(fmt.Errorf("verifying the audit log: %w", err))
	}
	resp := &opsv1.VerifyAuditResponse{Ok: err == nil}
	if report != nil {
		resp.Records, resp.Checkpoints = report.Records, uint64(report.Checkpoints)
	}
	if found {
		resp.FirstBadSeq, resp.Problem = fault.Seq, fault.Problem
	} else if resp.Records > 0 {
		h, herr := r.cfg.Store.AuditRecordHash(resp.Records)
		if herr != nil {
			return nil, r.statusError(herr)
		}
		resp.HeadSeq, resp.HeadHash = resp.Records, hex.EncodeToString(h[:])
	}
	if !resp.Ok {
		r.cfg.Log.Error("the audit log does not verify (R-K3)", "first_bad_seq", resp.FirstBadSeq, "problem", resp.Problem, "operator", who)
	}
	// A failed verification is recorded too: the log then says who found
	// what, after the fault. Recording it may itself fail (the store does
	// not extend a log whose last record is broken); the answer still
	// says what is wrong.
	if err := r.record(who, ActionAuditVerify, "ok", fmt.Sprint(resp.Ok), "records", fmt.Sprint(resp.Records),
		"first_bad_seq", fmt.Sprint(resp.FirstBadSeq)); err != nil && resp.Ok {
		return nil, r.statusError(err)
	}
	return resp, nil
}

// ExportAudit implements opsv1.OperationsServer: the records at or after
// since, oldest first, up to the log's head when the call began, at most
// ExportBatch a message, each page read in its own short transaction.
func (r *Records) ExportAudit(req *opsv1.ExportAuditRequest, stream grpc.ServerStreamingServer[opsv1.ExportAuditResponse]) error {
	ctx := stream.Context()
	who, err := actor(ctx)
	if err != nil {
		return err
	}
	since, err := r.parseSince(req.GetSince())
	if err != nil {
		return r.statusError(err)
	}
	head, _, err := r.cfg.Store.AuditHead()
	if err != nil {
		return r.statusError(err)
	}
	if err := r.record(who, ActionAuditExport, "since", req.GetSince(), "head_seq", fmt.Sprint(head)); err != nil {
		return r.statusError(err)
	}
	for next := uint64(1); next <= head; {
		batch := make([]*opsv1.AuditRecord, 0, ExportBatch)
		n, err := r.cfg.Store.AuditRecordsFrom(next, int(min(ExportBatch, head-next+1)), func(rec *storev1.AuditRecord) error {
			if !rec.GetTime().AsTime().Before(since) {
				batch = append(batch, AuditRecordOf(rec))
			}
			return nil
		})
		if err != nil {
			return r.statusError(err)
		}
		if n == next {
			break // the log is shorter than its head said: verify says why
		}
		next = n
		if len(batch) > 0 {
			if err := stream.Send(&opsv1.ExportAuditResponse{Records: batch}); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseSince checks ExportAuditRequest.since: empty (everything) or RFC
// 3339 between 2000 and a day from now.
func (r *Records) parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	earliest, _ := time.Parse(time.RFC3339, exportSinceEarliest)
	t, err := time.Parse(time.RFC3339, s)
	switch {
	case len(s) > 64 || err != nil:
		return t, invalid("since", "R-K3", "must be an RFC 3339 time, e.g. 2026-11-21T10:00:00+09:00")
	case t.Before(earliest) || t.After(r.cfg.Now().Add(exportSinceSlack)):
		return t, invalid("since", "R-K3", "must be between %s and a day from now", exportSinceEarliest)
	}
	return t, nil
}

// AuditRecordOf is a stored audit record as the API (and shomeictl audit
// export) gives it.
func AuditRecordOf(rec *storev1.AuditRecord) *opsv1.AuditRecord {
	out := &opsv1.AuditRecord{Seq: rec.GetSeq(), Time: rec.GetTime().AsTime().UTC().Format(time.RFC3339Nano),
		Actor: rec.GetActor(), Action: rec.GetAction(), PrevHash: hex.EncodeToString(rec.GetPrevHash())}
	for _, f := range rec.GetFields() {
		out.Fields = append(out.Fields, &opsv1.AuditField{Key: f.GetKey(), Value: f.GetValue()})
	}
	return out
}
