package ops

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"google.golang.org/grpc"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	"github.com/shomei-pki/shomei/ca/service"
)

// BackupChunk is the most bytes one BackupResponse chunk carries: 1 MiB.
const BackupChunk = 1 << 20

// BackupFormat is BackupHeader.format: the bytes are a bbolt file.
const BackupFormat = "bbolt"

// Backup implements opsv1.OperationsServer: a hot backup. The store's
// snapshot (store.Snapshot, one read transaction: writers go on) is first
// spooled to a private temporary file next to the store, then streamed:
// the header, chunks of at most BackupChunk bytes, and the trailer with
// their SHA-256 and the audit chain's head in the snapshot. The spool
// file is removed when the call ends. One backup at a time: a second
// concurrent call is ResourceExhausted, not queued. The backup is
// audited (R-K3) before the trailer is sent; that record is after the
// snapshot, so not in it.
func (r *Records) Backup(_ *opsv1.BackupRequest, stream grpc.ServerStreamingServer[opsv1.BackupResponse]) error {
	ctx := stream.Context()
	who, err := actor(ctx)
	if err != nil {
		return err
	}
	release, err := oneAtATime(r.backups, "a backup")
	if err != nil {
		return err
	}
	defer release()
	spool, err := os.CreateTemp(r.cfg.SpoolDir, ".shomei-backup-*.db") // mode 0600
	if err != nil {
		return r.statusError(fmt.Errorf("backup: spool file: %w", err))
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	sum := sha256.New()
	buf := bufio.NewWriterSize(io.MultiWriter(spool, sum), BackupChunk)
	info, err := r.cfg.Store.Snapshot(buf)
	if err == nil {
		err = buf.Flush()
	}
	if err != nil {
		return r.statusError(fmt.Errorf("backup: %w", err))
	}
	// A client that stops reading is cut off after SendTimeout: it would
	// hold the one backup slot for as long as its connection lives.
	send := func(m *opsv1.BackupResponse) error {
		return service.SendWithin(ctx, r.cfg.SendTimeout, func() error { return stream.Send(m) })
	}
	if err := send(&opsv1.BackupResponse{Part: &opsv1.BackupResponse_Header{Header: &opsv1.BackupHeader{
		Format: BackupFormat, TakenAt: rfc3339(info.TakenAt), Size: uint64(info.Size)}}}); err != nil {
		return err
	}
	if err := sendChunks(send, spool, info.Size); err != nil {
		return err
	}
	digest := hex.EncodeToString(sum.Sum(nil))
	headHash := hex.EncodeToString(info.AuditHeadHash[:])
	if err := r.record(who, ActionStoreBackup, "size", fmt.Sprint(info.Size), "sha256", digest,
		"audit_head_seq", fmt.Sprint(info.AuditHeadSeq), "audit_head_sha256", headHash); err != nil {
		return r.statusError(err)
	}
	return send(&opsv1.BackupResponse{Part: &opsv1.BackupResponse_Trailer{Trailer: &opsv1.BackupTrailer{
		Sha256: digest, AuditHeadSeq: info.AuditHeadSeq, AuditHeadHash: headHash}}})
}

// sendChunks streams the spool file's size bytes from its start.
func sendChunks(send func(*opsv1.BackupResponse) error, f *os.File, size int64) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	chunk := make([]byte, BackupChunk)
	for left := size; left > 0; {
		n, err := io.ReadFull(f, chunk[:min(int64(len(chunk)), left)])
		if err != nil {
			return fmt.Errorf("backup: reading the spool file: %w", err)
		}
		// Send marshals before it returns: the buffer is reused after.
		if err := send(&opsv1.BackupResponse{Part: &opsv1.BackupResponse_Chunk{Chunk: chunk[:n]}}); err != nil {
			return err
		}
		left -= int64(n)
	}
	return nil
}
