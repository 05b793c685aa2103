package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/validity"
)

// Refusals of an issuance, found inside the transaction that would record
// it, so that two concurrent requests can never both pass.
var (
	// ErrSerialTaken: the serial is already recorded (R-P1: never reused).
	ErrSerialTaken = errors.New("serial number already used")
	// ErrKeyUsed: another certificate already certifies the public key (R-P1).
	ErrKeyUsed = errors.New("public key already certified")
	// ErrKeyBlocked: the public key was reported lost or compromised (R-V8).
	ErrKeyBlocked = errors.New("public key is blocked")
	// ErrDoubleIssuance: the holder has a valid or pending certificate of the
	// profile (R-A4).
	ErrDoubleIssuance = errors.New("holder already has a valid certificate of this profile")
	// ErrNotRenewable: the certificate to renew is not the holder's valid one.
	ErrNotRenewable = errors.New("certificate cannot be renewed")
	// ErrInquiry: the inquiry is missing, for someone else, expired, used,
	// or the code does not match (R-A2).
	ErrInquiry = errors.New("inquiry not usable")
	// ErrNotFound: no such record.
	ErrNotFound = errors.New("not found")
)

// Reservation is the first half of an issuance: the certificates to record
// as PENDING, with everything that must hold for them, checked in one
// transaction.
type Reservation struct {
	// Certs to record, all for the same holder, state PENDING, with serial,
	// profile, issuer generation, holder, tbs_der, validity and public key
	// hash set.
	Certs []*storev1.Certificate
	// Now is the time the holder's existing certificates are judged at.
	Now time.Time
	// Supersede, for a renewal, maps the profile to the serial of the
	// holder's valid certificate it replaces; that one does not count as a
	// double issuance (R-A4) and must be ISSUED, unrevoked and unexpired.
	Supersede map[storev1.Profile][]byte
	// InquiryID and InquiryCode, for a PROXY application, must name an
	// open, unused, unexpired inquiry of the holder with that code (R-A2).
	InquiryID, InquiryCode string
	// CRLShardSize is the most certificates a CRL partition may hold
	// (shards.go, R-R5): a certificate whose crl_partition already holds
	// that many is refused with a *CRLShardFullError. Zero means
	// DefaultCRLShardSize; at most MaxCRLShardSize.
	CRLShardSize int
}

// Reserve records r's certificates as PENDING, after checking in the same
// transaction that their serials are new, their keys neither certified nor
// blocked, the holder has no other valid or pending certificate of their
// profiles, the superseded certificates are renewable and the inquiry is
// usable, and that no certificate's CRL partition is full (shards.go). It
// changes nothing when any check fails. Independent reservations
// from concurrent callers are committed together in one disk write.
func (s *Store) Reserve(r Reservation) error {
	if len(r.Certs) == 0 {
		return fmt.Errorf("store: reserve: %w: no certificates", ErrInvalidArgument)
	}
	size, err := CRLShardSize(r.CRLShardSize)
	if err != nil {
		return fmt.Errorf("store: reserve: %w", err)
	}
	first := r.Certs[0]
	for i, c := range r.Certs {
		if c.GetState() != storev1.CertState_CERT_STATE_PENDING || len(c.GetSerial()) == 0 ||
			len(c.GetTbsDer()) == 0 || len(c.GetPublicKeySha256()) != sha256.Size || c.GetProfile() == storev1.Profile_PROFILE_UNSPECIFIED {
			return fmt.Errorf("store: reserve: %w: certs[%d] is incomplete", ErrInvalidArgument, i)
		}
		if c.GetMunicipalityCode() != first.GetMunicipalityCode() || c.GetHolderId() != first.GetHolderId() {
			return fmt.Errorf("store: reserve: %w: certs[%d] is for another holder", ErrInvalidArgument, i)
		}
	}
	var wrong *WrongCodeError
	err = s.write(func(tx engine.Tx) error {
		err := reserve(tx, r, size)
		// A wrong inquiry code refuses the reservation, but its count,
		// the only thing reserve wrote, is committed in this transaction,
		// so that concurrent guesses cannot pass the limit (R-A2).
		// The function may run twice (batch.go): wrong is set each time.
		var ok bool
		if wrong, ok = errors.AsType[*WrongCodeError](err); ok {
			return nil
		}
		return err
	})
	if err == nil && wrong != nil {
		err = wrong
	}
	if err != nil {
		return fmt.Errorf("store: reserve: %w", err)
	}
	return nil
}

// reserve checks and records r. It writes nothing before every check has
// passed: a refusal leaves tx unchanged, except that a wrong inquiry code
// is counted (useInquiry).
func reserve(tx engine.Tx, r Reservation, shardSize int) error {
	certs, holders, keys, blocked := tx.Bucket(bucketCerts), tx.Bucket(bucketHolders), tx.Bucket(bucketKeys), tx.Bucket(bucketBlocked)
	first := r.Certs[0]
	prefix := holderPrefix(first.MunicipalityCode, first.HolderId)

	// R-A4: the holder's live certificates per profile.
	live := map[storev1.Profile][][]byte{}
	c := holders.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		p, serial, ok := decodeHolderKey(prefix, k)
		if !ok {
			return fmt.Errorf("store is damaged: holder index key %x", k)
		}
		rec, err := getCert(certs, serial)
		if err != nil {
			return err
		}
		if isLive(rec, r.Now) {
			live[p] = append(live[p], serial)
		}
	}
	for p, old := range r.Supersede {
		rec, err := getCert(certs, old)
		if errors.Is(err, ErrNotFound) || (err == nil && (rec.MunicipalityCode != first.MunicipalityCode || rec.HolderId != first.HolderId || rec.Profile != p)) {
			return fmt.Errorf("%w: %s is not a %s certificate of this holder", ErrNotRenewable, hex.EncodeToString(old), p)
		}
		if err != nil {
			return err
		}
		if rec.State != storev1.CertState_CERT_STATE_ISSUED || rec.Revocation != nil || validity.Expired(rec.NotAfter.AsTime(), r.Now) {
			return fmt.Errorf("%w: %s is not valid (state %s, revoked %t)", ErrNotRenewable, hex.EncodeToString(old), rec.State, rec.Revocation != nil)
		}
	}
	for _, cert := range r.Certs {
		for _, serial := range live[cert.Profile] {
			if !bytes.Equal(serial, r.Supersede[cert.Profile]) {
				return fmt.Errorf("%w: %s %s", ErrDoubleIssuance, cert.Profile, hex.EncodeToString(serial))
			}
		}
		if certs.Get(cert.Serial) != nil {
			return fmt.Errorf("%w: %s", ErrSerialTaken, hex.EncodeToString(cert.Serial))
		}
		if keys.Get(cert.PublicKeySha256) != nil {
			return ErrKeyUsed
		}
		if blocked.Get(cert.PublicKeySha256) != nil {
			return ErrKeyBlocked
		}
		// R-K2: once a generation is marked compromised (compromise.go)
		// nothing more is issued with it, whatever the process issuing
		// still holds in memory.
		if v := tx.Bucket(bucketIssuers).Get(issuerKey(cert.Profile, cert.IssuerGeneration)); v != nil {
			key, err := decodeIssuer(issuerKey(cert.Profile, cert.IssuerGeneration), v)
			if err != nil {
				return err
			}
			if key.State == storev1.KeyState_KEY_STATE_COMPROMISED {
				return fmt.Errorf("%w: %s generation %d", ErrIssuerCompromised, cert.Profile, cert.IssuerGeneration)
			}
		}
	}

	// R-R5: a full shard is refused before the inquiry is used, so the
	// caller can plan again in the next shard with the same code.
	if err := checkShards(tx, r, shardSize); err != nil {
		return err
	}
	if r.InquiryID != "" {
		if err := useInquiry(tx, r, first); err != nil {
			return err
		}
	}
	for _, cert := range r.Certs {
		rec := proto.CloneOf(cert)
		if rec.CreatedAt == nil {
			rec.CreatedAt = timestamppb.New(r.Now)
		}
		rec.InquiryId = r.InquiryID
		if old := r.Supersede[cert.Profile]; old != nil {
			rec.Supersedes = old
		}
		if err := putCert(certs, rec); err != nil {
			return err
		}
		if err := holders.Put(holderKey(rec.MunicipalityCode, rec.HolderId, rec.Profile, rec.Serial), nil); err != nil {
			return err
		}
		if err := keys.Put(rec.PublicKeySha256, rec.Serial); err != nil {
			return err
		}
		if err := countInShard(tx, rec.CrlPartition); err != nil {
			return err
		}
	}
	return nil
}

// isLive reports whether a certificate counts against a new issuance of its
// profile (R-A4): pending, or issued, unrevoked and unexpired at now
// (validity.Live: valid through the whole second of its notAfter).
func isLive(rec *storev1.Certificate, now time.Time) bool {
	switch rec.State {
	case storev1.CertState_CERT_STATE_PENDING:
		return true
	case storev1.CertState_CERT_STATE_ISSUED:
		return rec.Revocation == nil && validity.Live(rec.NotAfter.AsTime(), now)
	}
	return false
}

// Completion is the second half of an issuance: the signed certificates.
type Completion struct {
	// DER of the signed certificate by serial (as in Reservation.Certs).
	DER map[string][]byte // key: string(serial)
	// Now is when they were issued (and the superseded ones revoked).
	Now time.Time
	// Audit records to append in the same transaction (R-K3).
	Audit []*storev1.AuditRecord
	// Partitions describes the CRL partitions of the certificates, recorded
	// the first time a partition is used (R-R5).
	Partitions []*storev1.CRLPartition
}

// Complete stores the signed certificates of a reservation, marks them
// ISSUED and logs their issuance in the status-change log; for a renewal it revokes each superseded certificate as
// superseded in the same transaction (R-V4). Each certificate's TBS must
// equal the one recorded at reservation.
func (s *Store) Complete(c Completion) error {
	_, err := s.CompleteRenewal(c)
	return err
}

// CompleteRenewal is Complete, and says how many superseded certificates
// it revoked (those revoked meanwhile keep their revocation and are not
// counted): the CA counts them in shomei_ca_revocations_total.
func (s *Store) CompleteRenewal(c Completion) (superseded int, err error) {
	recs, err := prepareAudit(c.Audit, false, c.Now)
	if err != nil {
		return 0, fmt.Errorf("store: complete: %w", err)
	}
	err = s.write(func(tx engine.Tx) error {
		superseded = 0 // the transaction may be run again
		certs := tx.Bucket(bucketCerts)
		for serial, der := range c.DER {
			rec, err := getCert(certs, []byte(serial))
			if err != nil {
				return err
			}
			if rec.State != storev1.CertState_CERT_STATE_PENDING {
				return fmt.Errorf("%w: certificate %x is %s, not pending", ErrInvalidArgument, serial, rec.State)
			}
			tbs, err := tbsOf(der)
			if err != nil || !bytes.Equal(tbs, rec.TbsDer) {
				return fmt.Errorf("%w: signed certificate %x does not carry the recorded to-be-signed data", ErrInvalidArgument, serial)
			}
			rec.State, rec.Der = storev1.CertState_CERT_STATE_ISSUED, der
			if err := putCert(certs, rec); err != nil {
				return err
			}
			if err := appendChange(tx, rec, storev1.ChangeKind_CHANGE_KIND_ISSUED, c.Now); err != nil {
				return err
			}
			if len(rec.Supersedes) > 0 {
				old, err := getCert(certs, rec.Supersedes)
				if err != nil {
					return err
				}
				old.SupersededBy = rec.Serial
				if old.Revocation != nil {
					// Revoked meanwhile: it keeps that revocation (R-R2).
					err = putCert(certs, old)
				} else {
					err = revokeRecord(tx, old, &storev1.Revocation{RevokedAt: timestamppb.New(c.Now), Reason: ReasonSuperseded,
						InvalidityDate: timestamppb.New(c.Now), Cause: "renewal"}, false)
					superseded++
				}
				if err != nil {
					return err
				}
			}
		}
		parts := tx.Bucket(bucketParts)
		for _, p := range c.Partitions {
			if parts.Get([]byte(p.Name)) != nil {
				continue
			}
			v, err := marshal(p)
			if err != nil {
				return err
			}
			if err := parts.Put([]byte(p.Name), v); err != nil {
				return err
			}
		}
		if len(recs) > 0 {
			return appendAudit(tx, recs)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: complete: %w", err)
	}
	return superseded, nil
}

// ReasonSuperseded is RFC 5280's CRLReason superseded.
const ReasonSuperseded = 4

// Abandon marks pending certificates that will never be delivered (signing
// failed) as ABANDONED, so they no longer block the holder, and gives back
// the inquiry they used. Their serials stay taken.
func (s *Store) Abandon(serials [][]byte) error {
	err := s.db.Update(func(tx engine.Tx) error {
		for _, serial := range serials {
			if err := abandon(tx, serial); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: abandon: %w", err)
	}
	return nil
}

// AbandonPending marks ABANDONED every PENDING certificate reserved
// before before: at start-up, any still pending belongs to an issuance that
// died with the previous process and was never delivered. On a store
// other CA processes share, their issuances in flight are PENDING too:
// the caller passes a time far enough back that none is (ca). The scan
// runs in a read transaction, so it holds no writer up however large the
// store; the write re-checks each record. It returns their serials.
func (s *Store) AbandonPending(before time.Time) ([][]byte, error) {
	var pending [][]byte
	err := s.db.View(func(tx engine.Tx) error {
		return tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
			var rec storev1.Certificate
			if err := proto.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("store is damaged: certificate %x: %w", k, err)
			}
			if rec.State == storev1.CertState_CERT_STATE_PENDING && reservedBefore(rec.CreatedAt, before) {
				pending = append(pending, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	var out [][]byte
	err = s.db.Update(func(tx engine.Tx) error {
		out = out[:0]
		for _, serial := range pending {
			rec, err := getCert(tx.Bucket(bucketCerts), serial)
			if err != nil {
				return err
			}
			if rec.State != storev1.CertState_CERT_STATE_PENDING || !reservedBefore(rec.CreatedAt, before) {
				continue // completed or abandoned meanwhile
			}
			if err := abandonRecord(tx, rec); err != nil {
				return err
			}
			out = append(out, serial)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: abandon pending: %w", err)
	}
	return out, nil
}

// reservedBefore: a record without a creation time is older than any.
func reservedBefore(created *timestamppb.Timestamp, before time.Time) bool {
	return !created.IsValid() || created.AsTime().Before(before)
}

// abandon marks serial ABANDONED if it is PENDING (abandonRecord).
func abandon(tx engine.Tx, serial []byte) error {
	rec, err := getCert(tx.Bucket(bucketCerts), serial)
	if err != nil || rec.State != storev1.CertState_CERT_STATE_PENDING {
		return err
	}
	return abandonRecord(tx, rec)
}

// abandonRecord marks rec, read PENDING in tx, ABANDONED, and frees its
// key and inquiry.
func abandonRecord(tx engine.Tx, rec *storev1.Certificate) error {
	rec.State = storev1.CertState_CERT_STATE_ABANDONED
	if err := putCert(tx.Bucket(bucketCerts), rec); err != nil {
		return err
	}
	// The key was never certified: free it for another attempt.
	if err := tx.Bucket(bucketKeys).Delete(rec.PublicKeySha256); err != nil {
		return err
	}
	if rec.InquiryId != "" {
		return releaseInquiry(tx, rec.InquiryId)
	}
	return nil
}

// Certificate returns one certificate record by serial; ErrNotFound if none.
func (s *Store) Certificate(serial []byte) (*storev1.Certificate, error) {
	var rec *storev1.Certificate
	err := s.db.View(func(tx engine.Tx) error {
		var err error
		rec, err = getCert(tx.Bucket(bucketCerts), serial)
		return err
	})
	return rec, err
}

// HolderCertificates returns a holder's certificate records, in index order
// (by profile, then serial).
func (s *Store) HolderCertificates(municipality, holderID string) ([]*storev1.Certificate, error) {
	var out []*storev1.Certificate
	err := s.db.View(func(tx engine.Tx) error {
		prefix := holderPrefix(municipality, holderID)
		certs := tx.Bucket(bucketCerts)
		c := tx.Bucket(bucketHolders).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			_, serial, ok := decodeHolderKey(prefix, k)
			if !ok {
				return fmt.Errorf("store is damaged: holder index key %x", k)
			}
			rec, err := getCert(certs, serial)
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// KeyCertified reports whether a public key (by SPKI SHA-256) is certified
// by a certificate, or reserved by a pending one (R-P1).
func (s *Store) KeyCertified(spkiSHA256 []byte) (bool, error) {
	var used bool
	err := s.db.View(func(tx engine.Tx) error {
		used = tx.Bucket(bucketKeys).Get(spkiSHA256) != nil
		return nil
	})
	return used, err
}

// ForEachCertificate calls fn for every certificate record, in serial order.
func (s *Store) ForEachCertificate(fn func(*storev1.Certificate) error) error {
	return s.db.View(func(tx engine.Tx) error {
		return tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
			rec := new(storev1.Certificate)
			if err := proto.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("store is damaged: certificate %x: %w", k, err)
			}
			return fn(rec)
		})
	})
}

func getCert(b engine.Bucket, serial []byte) (*storev1.Certificate, error) {
	v := b.Get(serial)
	if v == nil {
		return nil, fmt.Errorf("certificate %x: %w", serial, ErrNotFound)
	}
	rec := new(storev1.Certificate)
	if err := proto.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("store is damaged: certificate %x: %w", serial, err)
	}
	return rec, nil
}

func putCert(b engine.Bucket, rec *storev1.Certificate) error {
	v, err := marshal(rec)
	if err != nil {
		return err
	}
	return b.Put(rec.Serial, v)
}

// tbsOf returns the TBSCertificate bytes of a DER certificate.
func tbsOf(der []byte) ([]byte, error) {
	input := cryptobyte.String(der)
	var cert, tbs cryptobyte.String
	if !input.ReadASN1(&cert, cbasn1.SEQUENCE) || !input.Empty() || !cert.ReadASN1Element(&tbs, cbasn1.SEQUENCE) {
		return nil, errors.New("not a DER certificate")
	}
	return tbs, nil
}

// CertificatesAfter calls fn for up to limit certificate records whose
// serial key sorts after after (nil: from the first), in key order, each in
// one short read transaction, and returns the last key seen (nil when there
// were none). Paging keeps a long walk, such as an OCSP replica's snapshot,
// from holding a read transaction open while it sends.
func (s *Store) CertificatesAfter(after []byte, limit int, fn func(*storev1.Certificate) error) ([]byte, error) {
	var last []byte
	err := s.db.View(func(tx engine.Tx) error {
		c := tx.Bucket(bucketCerts).Cursor()
		k, v := seekAfter(c, after)
		for n := 0; k != nil && n < limit; k, v = c.Next() {
			rec := new(storev1.Certificate)
			if err := proto.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("store is damaged: certificate %x: %w", k, err)
			}
			if err := fn(rec); err != nil {
				return err
			}
			last = bytes.Clone(k)
			n++
		}
		return nil
	})
	return last, err
}
