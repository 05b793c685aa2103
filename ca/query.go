package ca

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/jis"
	"github.com/shomei-pki/shomei/ca/serial"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/validity"
)

// Status is a certificate's status now (R-V6).
func (c *CA) Status(rec *storev1.Certificate) validity.Status {
	return validity.StatusAt(rec.NotAfter.AsTime(), rec.Revocation != nil, c.now())
}

// Certificate returns an issued certificate by serial (hex).
func (c *CA) Certificate(serialHex string) (*storev1.Certificate, error) {
	sn, err := ParseSerial(serialHex)
	if err != nil {
		return nil, refuse(KindInvalid, "serial", "R-P1", "must be the certificate serial number in hex (at most 20 octets)")
	}
	rec, err := c.cfg.Store.Certificate(sn)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.State != storev1.CertState_CERT_STATE_ISSUED) {
		return nil, SerialNotFound(serialHex)
	}
	return rec, err
}

// SerialNotFound is the refusal for a serial the CA does not have. The API
// gives it, word for word, for a serial of a municipality the caller may
// not act for too, so that no caller learns which serials exist elsewhere
// (issue 9 item 10).
func SerialNotFound(serialHex string) error {
	return refuse(KindNotFound, "serial", "R-P1", "no certificate with serial %s", serialHex)
}

// HolderCertificates returns a holder's issued certificates, newest first.
func (c *CA) HolderCertificates(municipality, holderID string) ([]*storev1.Certificate, error) {
	vs := &violations{}
	validateMunicipality(vs, Municipality{Code: municipality}, false)
	validateHolderID(vs, "holder_id", holderID)
	if err := vs.err(KindInvalid); err != nil {
		return nil, err
	}
	all, err := c.cfg.Store.HolderCertificates(municipality, holderID)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, r := range all {
		if r.State == storev1.CertState_CERT_STATE_ISSUED {
			out = append(out, r)
		}
	}
	// Newest first: by creation time (notBefore has whole seconds only).
	slices.SortFunc(out, func(a, b *storev1.Certificate) int {
		if c := b.CreatedAt.AsTime().Compare(a.CreatedAt.AsTime()); c != 0 {
			return c
		}
		return int(a.Profile) - int(b.Profile) // issued together: SIGN, then AUTH
	})
	return out, nil
}

// Inquiry is an opened inquiry: the code to mail, shown once.
type Inquiry struct {
	ID, Code  string
	ExpiresAt time.Time
}

// OpenInquiry opens an inquiry for a PROXY application (R-A2). Only the
// code's hash is kept.
func (c *CA) OpenInquiry(municipality, holderID string) (*Inquiry, error) {
	vs := &violations{}
	validateMunicipality(vs, Municipality{Code: municipality}, false)
	validateHolderID(vs, "holder_id", holderID)
	if err := vs.err(KindInvalid); err != nil {
		return nil, err
	}
	id, err := serial.OpaqueID("INQ-")
	if err != nil {
		return nil, err
	}
	raw, err := serial.Code(10)
	if err != nil {
		return nil, err
	}
	code := raw[:5] + "-" + raw[5:]
	now := c.now()
	sum := sha256.Sum256([]byte(code))
	inq := &storev1.Inquiry{Id: id, MunicipalityCode: municipality, HolderId: holderID, CodeSha256: sum[:],
		OpenedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(c.cfg.InquiryLifetime))}
	if err := c.cfg.Store.OpenInquiry(inq); err != nil {
		return nil, err
	}
	c.log.Info("inquiry opened", "inquiry", id, "municipality", municipality)
	return &Inquiry{ID: id, Code: code, ExpiresAt: inq.ExpiresAt.AsTime()}, nil
}

// CheckCharacters reports the characters of text that need a substitute (R-P5).
func (c *CA) CheckCharacters(text string) ([]jis.Offence, error) {
	if text == "" || tooLong(text, MaxAddressRunes) {
		return nil, refuse(KindInvalid, "text", "R-P5", "give a name or address of 1-%d characters", MaxAddressRunes)
	}
	return jis.Check(text), nil
}

// ParseSerial reads a hex serial as the store keys it: big-endian, no
// leading zero bytes. It looks at no more than MaxSerialHexBytes.
func ParseSerial(s string) ([]byte, error) {
	if len(s) > MaxSerialHexBytes {
		return nil, errors.New("not a serial")
	}
	s = strings.TrimLeft(strings.ToLower(strings.TrimSpace(s)), "0")
	if len(s)%2 == 1 {
		s = "0" + s
	}
	sn, err := hex.DecodeString(s)
	if err != nil || len(sn) == 0 || len(sn) > 20 {
		return nil, errors.New("not a serial")
	}
	return sn, nil
}

// SerialHex formats a serial as the API shows it.
func SerialHex(sn []byte) string {
	s := strings.TrimLeft(fmt.Sprintf("%x", sn), "0")
	if s == "" {
		return "0"
	}
	return s
}
