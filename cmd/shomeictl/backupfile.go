package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// A backup file (shomeictl backup --out FILE) is, byte for byte:
//
//	{"format":"shomei-backup/1","store_format":"bbolt","taken_at":"…","size":N}\n
//	the N bytes of the store's bbolt file, as the CA's snapshot has them
//	\n
//	{"sha256":"…","audit_head_seq":S,"audit_head_hash":"…"}\n
//
// The first line is the BackupHeader, the last the BackupTrailer of the
// stream it was taken from: sha256 is the hex SHA-256 of the N bytes,
// audit_head_* the audit log's last record in them (its seq, and the
// SHA-256 of its stored bytes). `head -1 FILE` shows what it is; the
// store is extracted with `tail -c +K | head -c N` where K is the first
// line's length plus one. The file holds every holder's records: it is
// written with mode 0600.

// backupFormat names this layout.
const backupFormat = "shomei-backup/1"

// maxBackupLine bounds the header and trailer lines when reading.
const maxBackupLine = 4096

// backupHeader is the file's first line.
type backupHeader struct {
	Format      string `json:"format"`
	StoreFormat string `json:"store_format"`
	TakenAt     string `json:"taken_at"`
	Size        uint64 `json:"size"`
}

// backupTrailer is the file's last line.
type backupTrailer struct {
	SHA256        string `json:"sha256"`
	AuditHeadSeq  uint64 `json:"audit_head_seq"`
	AuditHeadHash string `json:"audit_head_hash"`
}

// writeLine writes v as one JSON line.
func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// readBackup reads a backup file from r: its header, the store's bytes
// (copied to store, hashed on the way), and its trailer. It fails unless
// the layout holds, the size is the header's and the bytes hash to the
// trailer's SHA-256.
func readBackup(r io.Reader, store io.Writer) (*backupHeader, *backupTrailer, error) {
	br := bufio.NewReaderSize(r, maxBackupLine+1)
	var h backupHeader
	if err := readLine(br, &h); err != nil {
		return nil, nil, fmt.Errorf("not a shomei backup (its first line): %w", err)
	}
	if h.Format != backupFormat || h.StoreFormat != "bbolt" {
		return nil, nil, fmt.Errorf("not a shomei backup: format %q, store %q (want %s, bbolt)", h.Format, h.StoreFormat, backupFormat)
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(store, sum), io.LimitReader(br, int64(h.Size)))
	if err != nil {
		return nil, nil, err
	}
	if uint64(n) != h.Size {
		return nil, nil, fmt.Errorf("the backup is truncated: %d of the %d store bytes its header announces", n, h.Size)
	}
	if c, err := br.ReadByte(); err != nil || c != '\n' {
		return nil, nil, errors.New("the backup is damaged: no line break after the store's bytes")
	}
	var t backupTrailer
	if err := readLine(br, &t); err != nil {
		return nil, nil, fmt.Errorf("the backup is truncated or damaged (its last line): %w", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, nil, errors.New("the backup is damaged: bytes after its last line")
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != t.SHA256 {
		return nil, nil, fmt.Errorf("checksum mismatch: the store's bytes hash to %s, the backup recorded %s", got, t.SHA256)
	}
	return &h, &t, nil
}

// readLine reads one JSON line of at most maxBackupLine bytes into v.
func readLine(br *bufio.Reader, v any) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
