package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"github.com/shomei-pki/shomei/ca/validity"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// PartitionRevocations calls fn for each revoked certificate of a
// partition that has not expired at now (R-R5: entries are dropped after
// the certificate's expiry, validity.Expired), in serial order, with what
// its CRL entry says: the serial, the revocationDate, the reason and the
// invalidityDate (zero when none; both zero when not a valid Timestamp). It returns the status-change revision
// the entries reflect. serial is valid only during the call.
//
// It is PartitionEntries for the CRL publisher: a shard of 100,000
// entries is republished after every revocation in it, and reading each
// entry into a record of its own (proto.Unmarshal: a Certificate, a
// Revocation and three Timestamps) was half the time of that. The index
// record is read in place instead (decodeEntry).
func (s *Store) PartitionRevocations(name string, now time.Time, fn func(serial []byte, revokedAt time.Time, reason int32, invalidityDate time.Time) error) (uint64, error) {
	var rev uint64
	err := s.db.View(func(tx engine.Tx) error {
		rev = currentRevision(tx)
		return walkEntries(tx, name, now, func(_ []byte, e crlEntry, _ *storev1.Certificate) error {
			return fn(e.serial, e.revokedAt, e.reason, e.invalidityDate)
		})
	})
	return rev, err
}

// walkEntries calls fn for each revoked certificate of a partition that
// has not expired at now, in serial order, with its index record v and
// what it says, e. An index record from before the index kept the entry
// itself is empty: then e is read from the certificate, given as rec.
func walkEntries(tx engine.Tx, name string, now time.Time, fn func(v []byte, e crlEntry, rec *storev1.Certificate) error) error {
	prefix := entryPrefix(name)
	certs := tx.Bucket(bucketCerts)
	c := tx.Bucket(bucketEntries).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var e crlEntry
		var rec *storev1.Certificate
		var err error
		if len(v) > 0 {
			err = e.decode(v)
		} else if rec, err = getCert(certs, k[len(prefix):]); err == nil {
			e = entryOf(rec)
		}
		if err != nil {
			return fmt.Errorf("store is damaged: CRL entry %x: %w", k, err)
		}
		if !e.revoked || validity.Expired(e.notAfter, now) {
			continue
		}
		if err := fn(v, e, rec); err != nil {
			return err
		}
	}
	return nil
}

// crlEntry is what a CRL index record says of its certificate.
type crlEntry struct {
	serial   []byte
	notAfter time.Time // 1970 when unset, as Timestamp.AsTime of nil
	revoked  bool      // the record has a revocation
	// revokedAt and invalidityDate are zero when unset or invalid
	// (Timestamp.IsValid), as the publisher took them before.
	revokedAt, invalidityDate time.Time
	reason                    int32
}

// entryOf is rec's entry, as decode reads it from rec's index record.
func entryOf(rec *storev1.Certificate) crlEntry {
	e := crlEntry{serial: rec.Serial, notAfter: rec.NotAfter.AsTime(), revoked: rec.Revocation != nil}
	if r := rec.Revocation; r != nil {
		e.reason = r.Reason
		if r.RevokedAt.IsValid() {
			e.revokedAt = r.RevokedAt.AsTime()
		}
		if r.InvalidityDate.IsValid() {
			e.invalidityDate = r.InvalidityDate.AsTime()
		}
	}
	return e
}

// The field numbers decode reads, from the records' descriptors, so that
// they follow api/shomei/store/v1 rather than repeat it.
var (
	certFields       = (&storev1.Certificate{}).ProtoReflect().Descriptor().Fields()
	revocationFields = (&storev1.Revocation{}).ProtoReflect().Descriptor().Fields()

	fieldSerial         = certFields.ByName("serial").Number()
	fieldNotAfter       = certFields.ByName("not_after").Number()
	fieldRevocation     = certFields.ByName("revocation").Number()
	fieldRevokedAt      = revocationFields.ByName("revoked_at").Number()
	fieldReason         = revocationFields.ByName("reason").Number()
	fieldInvalidityDate = revocationFields.ByName("invalidity_date").Number()
)

// google.protobuf.Timestamp's fields.
const (
	fieldSeconds protoreflect.FieldNumber = 1
	fieldNanos   protoreflect.FieldNumber = 2
)

var errEntryWire = errors.New("not a CRL index record")

// decode reads a CRL index record (storev1.Certificate, serial, not_after
// and revocation set; schema.go) as proto.Unmarshal would, without making
// the record: every input proto.Unmarshal accepts gives the same values
// (FuzzDecodeEntry). Unknown fields, and known ones of another wire type,
// are skipped, as proto.Unmarshal keeps them aside; a field given twice
// takes the last value, a message given twice is merged. serial aliases v.
func (e *crlEntry) decode(v []byte) error {
	var notAfter, revokedAt, invalidity timestamp
	for len(v) > 0 {
		f, err := nextField(&v)
		if err != nil {
			return err
		}
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case fieldSerial:
			e.serial = f.bytes
		case fieldNotAfter:
			err = notAfter.merge(f.bytes)
		case fieldRevocation:
			e.revoked = true
			for r := f.bytes; len(r) > 0 && err == nil; {
				var g field
				if g, err = nextField(&r); err != nil {
					break
				}
				switch {
				case g.num == fieldRevokedAt && g.typ == protowire.BytesType:
					err = revokedAt.merge(g.bytes)
				case g.num == fieldReason && g.typ == protowire.VarintType:
					e.reason = int32(g.varint)
				case g.num == fieldInvalidityDate && g.typ == protowire.BytesType:
					err = invalidity.merge(g.bytes)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	e.notAfter = notAfter.time()
	if revokedAt.valid() {
		e.revokedAt = revokedAt.time()
	}
	if invalidity.valid() {
		e.invalidityDate = invalidity.time()
	}
	return nil
}

// timestamp is a google.protobuf.Timestamp being read.
type timestamp struct {
	seconds int64
	nanos   int32
	set     bool
}

func (t *timestamp) merge(v []byte) error {
	t.set = true
	for len(v) > 0 {
		f, err := nextField(&v)
		if err != nil {
			return err
		}
		switch {
		case f.num == fieldSeconds && f.typ == protowire.VarintType:
			t.seconds = int64(f.varint)
		case f.num == fieldNanos && f.typ == protowire.VarintType:
			t.nanos = int32(f.varint)
		}
	}
	return nil
}

// time is Timestamp.AsTime: 1970 when unset.
func (t timestamp) time() time.Time { return time.Unix(t.seconds, int64(t.nanos)).UTC() }

// valid is Timestamp.IsValid: set, from year 1 to 9999, nanos in [0, 1e9).
func (t timestamp) valid() bool {
	const minSeconds, maxSeconds = -62135596800, 253402300799
	return t.set && minSeconds <= t.seconds && t.seconds <= maxSeconds && 0 <= t.nanos && t.nanos < 1e9
}

// field is one field of a protobuf message: its number, wire type, and its
// bytes (length-delimited) or value (varint).
type field struct {
	num    protoreflect.FieldNumber
	typ    protowire.Type
	bytes  []byte
	varint uint64
}

// nextField reads the first field of *v and moves *v past it.
func nextField(v *[]byte) (field, error) {
	// The fields of these records have one-octet tags, lengths of one
	// octet and values (times in seconds) of up to nine: read in place.
	if b := *v; len(b) >= 2 && b[0] < 0x80 && b[0]>>3 != 0 {
		num, typ := protoreflect.FieldNumber(b[0]>>3), protowire.Type(b[0]&7)
		switch {
		case typ == protowire.VarintType:
			var x uint64
			for i, c := range b[1:min(len(b), 10)] {
				x |= uint64(c&0x7f) << (7 * i)
				if c < 0x80 {
					*v = b[2+i:]
					return field{num: num, typ: typ, varint: x}, nil
				}
			}
		case typ == protowire.BytesType && b[1] < 0x80 && 2+int(b[1]) <= len(b):
			end := 2 + int(b[1])
			*v = b[end:]
			return field{num: num, typ: typ, bytes: b[2:end:end]}, nil
		}
	}
	num, typ, n := protowire.ConsumeTag(*v)
	if n < 0 {
		return field{}, fmt.Errorf("%w: %v", errEntryWire, protowire.ParseError(n))
	}
	*v = (*v)[n:]
	f := field{num: num, typ: typ}
	switch typ {
	case protowire.BytesType:
		f.bytes, n = protowire.ConsumeBytes(*v)
	case protowire.VarintType:
		f.varint, n = protowire.ConsumeVarint(*v)
	default:
		n = protowire.ConsumeFieldValue(num, typ, *v)
	}
	if n < 0 {
		return field{}, fmt.Errorf("%w: field %d: %v", errEntryWire, num, protowire.ParseError(n))
	}
	*v = (*v)[n:]
	return f, nil
}
