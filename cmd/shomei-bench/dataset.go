package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// entry is one end-entity certificate the responders know: its serial and
// whether (when, why) it was revoked. No certificate is signed: a CertID
// names a certificate by its issuer's hashes and its serial only.
type entry struct {
	Serial    *big.Int
	Revoked   bool
	RevokedAt time.Time // whole seconds, UTC
	Reason    int       // RFC 5280 CRLReason; never 0, see revocationReasons
}

// dataset is the certificates both the peer (index.txt) and Shomei's Source
// (a bbolt file) are given.
type dataset struct {
	Entries []entry
	// NotAfter is every certificate's expiry, the index's second column.
	NotAfter time.Time
}

// revoked is how many of d's certificates are revoked.
func (d *dataset) revoked() int {
	n := 0
	for _, e := range d.Entries {
		if e.Revoked {
			n++
		}
	}
	return n
}

// revocationReasons are the reasons of R-R1 the dataset draws from; the
// CA database spells them with their RFC 5280 names (x509enc.ReasonName).
// unspecified (0) is left out: Shomei leaves the reason out for it (RFC
// 5280 §5.3.1) and openssl sends it, which would make the responses differ
// for no reason.
var revocationReasons = []int{
	x509enc.ReasonKeyCompromise,
	x509enc.ReasonAffiliationChanged,
	x509enc.ReasonSuperseded,
	x509enc.ReasonCessationOfOperation,
}

func reasonName(code int) (string, error) {
	if slices.Contains(revocationReasons, code) {
		return x509enc.ReasonName(code), nil
	}
	return "", fmt.Errorf("reason %d has no name in the CA database", code)
}

// newDataset makes n certificates with distinct positive 127-bit serials
// (R-P1: at least 64 bits), the fraction revoked at a time in the 30 days
// before now. The same seed makes the same dataset.
func newDataset(n int, revoked float64, seed uint64, now time.Time) *dataset {
	rng := rand.New(rand.NewChaCha8(seedBytes(seed)))
	d := &dataset{Entries: make([]entry, 0, n), NotAfter: now.UTC().Add(5 * 365 * 24 * time.Hour).Truncate(time.Second)}
	seen := make(map[[16]byte]bool, n)
	for len(d.Entries) < n {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], rng.Uint64())
		binary.BigEndian.PutUint64(b[8:], rng.Uint64())
		b[0] &= 0x7f // positive
		if b[0] == 0 || seen[b] {
			continue // keep 16 octets; never reuse a serial
		}
		seen[b] = true
		e := entry{Serial: new(big.Int).SetBytes(b[:])}
		if rng.Float64() < revoked {
			e.Revoked = true
			e.RevokedAt = now.UTC().Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))).Truncate(time.Second)
			e.Reason = revocationReasons[rng.IntN(len(revocationReasons))]
		}
		d.Entries = append(d.Entries, e)
	}
	return d
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	binary.BigEndian.PutUint64(s[:], seed)
	copy(s[8:], "shomei-bench dataset")
	return s
}

// serialHex is a serial as OpenSSL's CA database and `openssl ocsp` look it
// up: BN_bn2hex, upper-case, two digits per octet ("00" for zero). A serial
// written otherwise (odd length, lower case) is never found, and its
// certificate is answered unknown.
func serialHex(serial *big.Int) string {
	if serial.Sign() == 0 {
		return "00"
	}
	return fmt.Sprintf("%X", serial.Bytes())
}

// caTime is the CA database's time format: UTCTime, YYMMDDHHMMSSZ.
func caTime(t time.Time) string { return t.UTC().Format("060102150405Z") }

// indexLine is e's line in an OpenSSL CA database (`openssl ca`'s
// index.txt): six tab-separated fields, status (V valid, R revoked),
// expiry, revocation time[,reason] (empty unless revoked), serial, file
// name ("unknown") and subject DN. Each DN is distinct: `openssl ocsp`
// loads the database with unique_subject on and refuses duplicates.
func indexLine(e entry, notAfter time.Time) (string, error) {
	status, rev := "V", ""
	if e.Revoked {
		name, err := reasonName(e.Reason)
		if err != nil {
			return "", err
		}
		status, rev = "R", caTime(e.RevokedAt)+","+name
	}
	sn := serialHex(e.Serial)
	return strings.Join([]string{status, caTime(notAfter), rev, sn, "unknown", "/C=JP/O=JPKI/CN=bench-" + sn}, "\t"), nil
}

// writeIndex writes the dataset as an OpenSSL CA database.
func (d *dataset) writeIndex(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, e := range d.Entries {
		line, err := indexLine(e, d.NotAfter)
		if err != nil {
			return err
		}
		bw.WriteString(line)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// writeIndexFile writes the CA database to path.
func (d *dataset) writeIndexFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := d.writeIndex(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// byHex finds an entry by its serialHex.
func (d *dataset) byHex() map[string]*entry {
	m := make(map[string]*entry, len(d.Entries))
	for i := range d.Entries {
		m[serialHex(d.Entries[i].Serial)] = &d.Entries[i]
	}
	return m
}

// statusBucket holds the statuses in the bbolt file, keyed by the serial's
// big-endian magnitude.
var statusBucket = []byte("status")

// Stored status values: one kind octet, and for revoked the revocation
// time (8 octets, Unix seconds, big-endian) and the reason (one octet).
const (
	storedGood    = 1
	storedRevoked = 2
)

// encodeStatus is e's value in the bbolt file.
func encodeStatus(e entry) []byte {
	if !e.Revoked {
		return []byte{storedGood}
	}
	v := make([]byte, 10)
	v[0] = storedRevoked
	binary.BigEndian.PutUint64(v[1:9], uint64(e.RevokedAt.Unix()))
	v[9] = byte(e.Reason)
	return v
}

// writeBolt writes the dataset's statuses to a new bbolt file at path.
func (d *dataset) writeBolt(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	const batch = 10000 // a transaction per batch keeps the write quick
	for start := 0; start < len(d.Entries); start += batch {
		chunk := d.Entries[start:min(start+batch, len(d.Entries))]
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(statusBucket)
			if err != nil {
				return err
			}
			for _, e := range chunk {
				if err := b.Put(e.Serial.Bytes(), encodeStatus(e)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			db.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return db.Close()
}
