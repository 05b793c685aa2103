package ops_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/ops"
	"github.com/shomei-pki/shomei/ca/store"
)

// backup is a Backup stream read to its end.
type backup struct {
	header  *opsv1.BackupHeader
	data    []byte
	chunks  int
	trailer *opsv1.BackupTrailer
}

func readBackup(stream grpc.ServerStreamingClient[opsv1.BackupResponse]) (*backup, error) {
	return readBackupTo(stream, &backup{})
}

// readBackupTo reads the rest of stream into b.
func readBackupTo(stream grpc.ServerStreamingClient[opsv1.BackupResponse], b *backup) (*backup, error) {
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		switch p := m.Part.(type) {
		case *opsv1.BackupResponse_Header:
			if b.header != nil || b.chunks > 0 {
				return b, fmt.Errorf("a header after the stream began")
			}
			b.header = p.Header
		case *opsv1.BackupResponse_Chunk:
			if b.header == nil || b.trailer != nil {
				return b, fmt.Errorf("a chunk outside header … trailer")
			}
			if len(p.Chunk) == 0 || len(p.Chunk) > ops.BackupChunk {
				return b, fmt.Errorf("a chunk of %d bytes", len(p.Chunk))
			}
			b.data = append(b.data, p.Chunk...)
			b.chunks++
		case *opsv1.BackupResponse_Trailer:
			b.trailer = p.Trailer
		}
	}
}

// padAudit makes the store bigger than n bytes of audit records.
func padAudit(t *testing.T, st *store.Store, n int) {
	t.Helper()
	pad := strings.Repeat("x", 1000)
	var recs []*storev1.AuditRecord
	for i := 0; i*1000 < n; i++ {
		recs = append(recs, &storev1.AuditRecord{Time: timestamppb.Now(), Actor: "ops-test", Action: "test.pad",
			Fields: []*storev1.AuditField{{Key: "pad", Value: pad}}})
	}
	if err := st.AppendAudit(recs...); err != nil {
		t.Fatal(err)
	}
}

// A backup taken while the CA issues is one consistent snapshot: its
// bytes are what the trailer's SHA-256 says, in chunks of at most 1 MiB;
// opened as a store, its audit chain verifies up to the head the trailer
// names, and every certificate in it is explained by its log (none issued
// half: ReconcileAudit). The backup is audited with the operator's name.
func TestBackupUnderIssuance(t *testing.T) {
	h := start(t, tokenRecords)
	padAudit(t, h.store, 2<<20)
	h.issue(t, "13221", "holder-0", "1990-06-15")

	stop := make(chan struct{})
	var issued atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			h.issue(t, "13221", fmt.Sprintf("holder-%d", i), "1990-06-15")
			issued.Add(1)
		}
	})
	stream, err := h.ops.Backup(h.ctx, &opsv1.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := readBackup(stream)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if b.header == nil || b.trailer == nil || b.header.Format != "bbolt" || b.header.TakenAt == "" {
		t.Fatalf("backup header %v, trailer %v", b.header, b.trailer)
	}
	if uint64(len(b.data)) != b.header.Size || b.chunks < 2 {
		t.Fatalf("backup: %d bytes in %d chunks, header says %d", len(b.data), b.chunks, b.header.Size)
	}
	if sum := sha256.Sum256(b.data); hex.EncodeToString(sum[:]) != b.trailer.Sha256 {
		t.Fatalf("backup bytes hash to %x, trailer says %s", sum, b.trailer.Sha256)
	}
	t.Logf("backup of %d bytes; %d issuances ran alongside", len(b.data), issued.Load())

	dir := t.TempDir()
	path := filepath.Join(dir, "restored.db")
	if err := os.WriteFile(path, b.data, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seq, hash, err := st.AuditHead()
	if err != nil || seq != b.trailer.AuditHeadSeq || hex.EncodeToString(hash[:]) != b.trailer.AuditHeadHash {
		t.Fatalf("restored head %d %x (%v), trailer %d %s", seq, hash, err, b.trailer.AuditHeadSeq, b.trailer.AuditHeadHash)
	}
	if n, err := st.VerifyAudit(); err != nil || uint64(n) != seq {
		t.Fatalf("restored chain: %d records, %v", n, err)
	}
	if _, err := st.ReconcileAudit(); err != nil {
		t.Fatalf("the snapshot is not consistent: %v", err)
	}
	var audited bool
	if _, err := h.store.AuditRecordsFrom(seq+1, 1<<20, func(r *storev1.AuditRecord) error {
		audited = audited || (r.Action == "store.backup" && r.Actor == "local:alice" && strings.Contains(fmt.Sprint(r.Fields), b.trailer.Sha256))
		return nil
	}); err != nil || !audited {
		t.Fatalf("the backup was not audited (%v)", err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(h.path), ".shomei-backup-*")); len(m) > 0 {
		t.Fatalf("spool files left behind: %v", m)
	}
}

// One backup at a time: while one is being sent (to a reader that holds
// it up), a second is ResourceExhausted at once, not queued; the first
// completes.
func TestBackupOneAtATime(t *testing.T) {
	h := start(t, tokenRecords)
	padAudit(t, h.store, 3<<20)
	// A reader with the smallest window and no BDP growth: the CA's second
	// 1 MiB chunk waits for it to read.
	slow, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	first, err := opsv1.NewOperationsClient(slow).Backup(ctx, &opsv1.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := first.Recv()
	if err != nil || m.GetHeader() == nil {
		t.Fatalf("first backup's header: %v, %v", m, err)
	}
	second, err := h.ops.Backup(h.ctx, &opsv1.BackupRequest{})
	if err == nil {
		_, err = second.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a second backup while one runs: %v, want ResourceExhausted", err)
	}
	b, err := readBackupTo(first, &backup{header: m.GetHeader()})
	if err != nil || b.trailer == nil || uint64(len(b.data)) != b.header.Size {
		t.Fatalf("the first backup after the refusal: %v", err)
	}
}
