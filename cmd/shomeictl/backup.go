package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	"github.com/shomei-pki/shomei/ca/store"
)

// newBackupCommand is `shomeictl backup`: a hot backup of the running CA's
// store, and its offline check and restore.
func newBackupCommand(_ *globals, c *caClient) *cobra.Command {
	var out string
	backup := operatorGroup(&cobra.Command{
		Use:   "backup --out FILE",
		Short: "Take a consistent backup of the running CA's store, and verify or restore one",
		Long: `backup --out FILE asks the running CA (--ca) for a consistent snapshot of its
store, taken while it serves, and writes it to FILE (mode 0600: it holds
every holder's records), atomically: FILE appears complete or not at all,
and an existing FILE is refused. Progress goes to stderr. The CA takes one
backup at a time; a second at once is refused (ResourceExhausted).

FILE is a JSON header line, the store's bbolt bytes, and a JSON trailer line
with their SHA-256 and the audit chain's head (see backup verify).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out FILE is required")
			}
			return takeBackup(cmd, c, out)
		},
	}, c)
	backup.Flags().StringVar(&out, "out", "", "the backup file to write (must not exist)")

	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a backup file offline: checksum, audit chain up to its recorded head, certificates reconciled",
		Long: `verify needs no CA: it checks FILE's layout and SHA-256, opens the store it
contains (a private temporary copy), checks that the audit chain is unbroken
up to the head the backup recorded and that every certificate's state is
explained by the log, and prints what it holds. The audit checkpoints'
signatures and the HSM's witness are checked when the restored CA starts.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := verifyBackup(args[0])
			if v != nil {
				defer v.cleanup()
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup %s verified: taken %s, %d bytes, sha256 %s; audit chain intact up to record %d; %d certificates (reconciled), %d issuer key generations, %d audit records, %d responder certificates\n",
				args[0], v.header.TakenAt, v.header.Size, v.trailer.SHA256, v.trailer.AuditHeadSeq, v.counts.Certificates, v.counts.Issuers, v.counts.AuditRecords, v.counts.Responders)
			return nil
		},
	}
	var to string
	restore := &cobra.Command{
		Use:   "restore FILE --store PATH",
		Short: "Verify a backup file and write its store to PATH (which must not exist)",
		Long: `restore verifies FILE as backup verify does, then writes the store it contains
to PATH (mode 0600; its directory is made 0700 if missing). An existing PATH
is refused. Then point store.path at PATH and start shomei-ca with the same
HSM token. The HSM witnessed the original log further than the backup
goes: if shomei-ca refuses to start saying the log was rolled back, accept
that, audited, with shomeictl audit verify --offline --accept-rollback
--operator NAME, and start it again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return errors.New("--store PATH is required")
			}
			if _, err := os.Lstat(to); err == nil {
				return fmt.Errorf("--store %s exists: restore writes a new store only", to)
			}
			v, err := verifyBackup(args[0])
			if v != nil {
				defer v.cleanup()
			}
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
				return err
			}
			src, err := os.Open(v.original)
			if err != nil {
				return err
			}
			defer src.Close()
			if err := writeNew(to, func(w io.Writer) error { _, err := io.Copy(w, src); return err }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s (taken %s; %d certificates, audit head record %d) to %s: set store.path to it and start shomei-ca; "+
				"if it says the audit log was rolled back, run shomeictl audit verify --offline --accept-rollback --operator NAME first\n",
				args[0], v.header.TakenAt, v.counts.Certificates, v.trailer.AuditHeadSeq, to)
			return nil
		},
	}
	restore.Flags().StringVar(&to, "store", "", "where to write the store file (must not exist)")
	backup.AddCommand(verify, restore)
	return backup
}

// takeBackup streams the CA's backup into a new file at path.
func takeBackup(cmd *cobra.Command, c *caClient, path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("--out %s exists: choose a new file", path)
	}
	var h *opsv1.BackupHeader
	var t *opsv1.BackupTrailer
	err := writeNew(path, func(w io.Writer) error {
		return c.stream(cmd.Context(), func(ctx context.Context, alive func()) error {
			api, ctx, done, err := c.dial(ctx)
			if err != nil {
				return err
			}
			defer done()
			stream, err := api.Backup(ctx, &opsv1.BackupRequest{})
			if err != nil {
				return err
			}
			var got uint64
			var sum hash.Hash
			var bar *countProgress
			for {
				m, err := stream.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				alive()
				switch p := m.Part.(type) {
				case *opsv1.BackupResponse_Header:
					if h != nil {
						return errors.New("the CA sent a second header")
					}
					h, sum = p.Header, sha256.New()
					bar = newByteProgress(cmd.ErrOrStderr(), h.Size)
					if err := writeLine(w, backupHeader{Format: backupFormat, StoreFormat: h.Format, TakenAt: h.TakenAt, Size: h.Size}); err != nil {
						return err
					}
				case *opsv1.BackupResponse_Chunk:
					if h == nil || t != nil || got+uint64(len(p.Chunk)) > h.Size {
						return errors.New("the CA sent bytes outside the announced snapshot")
					}
					if _, err := w.Write(p.Chunk); err != nil {
						return err
					}
					sum.Write(p.Chunk)
					got += uint64(len(p.Chunk))
					bar.update(got)
				case *opsv1.BackupResponse_Trailer:
					t = p.Trailer
				}
			}
			switch {
			case h == nil || t == nil:
				return errors.New("the CA ended the backup without its header or trailer")
			case got != h.Size:
				return fmt.Errorf("the CA sent %d of the %d bytes it announced", got, h.Size)
			case hex.EncodeToString(sum.Sum(nil)) != t.Sha256:
				return fmt.Errorf("checksum mismatch: received bytes hash to %x, the CA says %s", sum.Sum(nil), t.Sha256)
			}
			bar.finish()
			if _, err := w.Write([]byte{'\n'}); err != nil {
				return err
			}
			return writeLine(w, backupTrailer{SHA256: t.Sha256, AuditHeadSeq: t.AuditHeadSeq, AuditHeadHash: t.AuditHeadHash})
		})
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "backup written to %s: taken %s, %d bytes, sha256 %s, audit head record %d\n", path, h.TakenAt, h.Size, t.Sha256, t.AuditHeadSeq)
	return nil
}

// writeNew writes a new file at path, mode 0600, atomically: fill writes
// a temporary file in the same directory, which is synced and then linked
// to path (refused if path exists meanwhile) and removed.
func writeNew(path string, fill func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// verifiedBackup is a backup file checked by verifyBackup.
type verifiedBackup struct {
	header   *backupHeader
	trailer  *backupTrailer
	counts   store.Counts
	original string // the store's bytes as the backup has them
	cleanup  func()
}

// verifyBackup checks a backup file offline: layout and SHA-256, then the
// store in it, opened from a private copy (opening writes to it): the
// audit head is the recorded one, the chain verifies up to it, and every
// certificate's state is explained by the log.
func verifyBackup(path string) (*verifiedBackup, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir, err := os.MkdirTemp("", "shomei-backup-verify-*") // 0700
	if err != nil {
		return nil, err
	}
	v := &verifiedBackup{original: filepath.Join(dir, "backup.db"), cleanup: func() { os.RemoveAll(dir) }}
	err = writeNew(v.original, func(w io.Writer) error {
		v.header, v.trailer, err = readBackup(f, w)
		return err
	})
	if err != nil {
		return v, fmt.Errorf("backup %s: %w", path, err)
	}
	opened := filepath.Join(dir, "opened.db")
	src, err := os.Open(v.original)
	if err != nil {
		return v, err
	}
	defer src.Close()
	if err := writeNew(opened, func(w io.Writer) error { _, err := io.Copy(w, src); return err }); err != nil {
		return v, err
	}
	st, err := store.Open(opened, store.Options{})
	if err != nil {
		return v, fmt.Errorf("backup %s: the store in it does not open: %w", path, err)
	}
	defer st.Close()
	seq, head, err := st.AuditHead()
	if err != nil {
		return v, fmt.Errorf("backup %s: %w", path, err)
	}
	if seq != v.trailer.AuditHeadSeq || hex.EncodeToString(head[:]) != v.trailer.AuditHeadHash {
		return v, fmt.Errorf("backup %s: its audit head is record %d sha256:%x, the backup recorded record %d sha256:%s",
			path, seq, head, v.trailer.AuditHeadSeq, v.trailer.AuditHeadHash)
	}
	if _, err := st.VerifyAudit(); err != nil {
		return v, fmt.Errorf("backup %s: %w", path, err)
	}
	if _, err := st.ReconcileAudit(); err != nil {
		return v, fmt.Errorf("backup %s: %w", path, err)
	}
	v.counts, err = st.Count()
	return v, err
}

// newByteProgress shows a backup's transfer of total bytes.
func newByteProgress(w io.Writer, total uint64) *countProgress {
	return newCountProgress(w, "backup", total, func(done, total uint64) string {
		pct := 100.0
		if total > 0 {
			pct = float64(done) * 100 / float64(total)
		}
		return fmt.Sprintf("%.1f of %.1f MiB (%.0f%%)", float64(done)/(1<<20), float64(total)/(1<<20), pct)
	})
}
