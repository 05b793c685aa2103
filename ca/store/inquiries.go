package store

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"github.com/shomei-pki/shomei/ca/store/engine"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// OpenInquiry records a new inquiry (R-A2). The record carries the SHA-256
// of its one-time code, never the code.
func (s *Store) OpenInquiry(inq *storev1.Inquiry) error {
	if inq.GetId() == "" || len(inq.GetCodeSha256()) != sha256.Size || inq.GetHolderId() == "" ||
		inq.GetMunicipalityCode() == "" || inq.GetExpiresAt() == nil || inq.GetOpenedAt() == nil {
		return fmt.Errorf("store: open inquiry: %w: incomplete record", ErrInvalidArgument)
	}
	err := s.db.Update(func(tx engine.Tx) error {
		b := tx.Bucket(bucketInquiry)
		if b.Get([]byte(inq.Id)) != nil {
			return fmt.Errorf("%w: inquiry id %s already used", ErrInvalidArgument, inq.Id)
		}
		v, err := marshal(inq)
		if err != nil {
			return err
		}
		return b.Put([]byte(inq.Id), v)
	})
	if err != nil {
		return fmt.Errorf("store: open inquiry: %w", err)
	}
	return nil
}

// Inquiry returns an inquiry record; ErrNotFound if none.
func (s *Store) Inquiry(id string) (*storev1.Inquiry, error) {
	var inq *storev1.Inquiry
	err := s.db.View(func(tx engine.Tx) error {
		var err error
		inq, err = getInquiry(tx.Bucket(bucketInquiry), id)
		return err
	})
	return inq, err
}

func getInquiry(b engine.Bucket, id string) (*storev1.Inquiry, error) {
	v := b.Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("inquiry %s: %w", id, ErrNotFound)
	}
	inq := new(storev1.Inquiry)
	if err := proto.Unmarshal(v, inq); err != nil {
		return nil, fmt.Errorf("store is damaged: inquiry %s: %w", id, err)
	}
	return inq, nil
}

// MaxInquiryAttempts is how many wrong codes an inquiry takes: at the
// last, it is locked and refuses even its own code (R-A2: the code is the
// proof that the application reached the holder's registered address, so
// it must not be guessable by trying).
const MaxInquiryAttempts = 5

var (
	// ErrInquiryWrongCode: the code presented is not the inquiry's. Reserve
	// counts the wrong attempt.
	ErrInquiryWrongCode = fmt.Errorf("%w: the code does not match", ErrInquiry)
	// ErrInquiryLocked: MaxInquiryAttempts wrong codes were presented; the
	// inquiry refuses every code.
	ErrInquiryLocked = fmt.Errorf("%w: locked after %d wrong codes", ErrInquiry, MaxInquiryAttempts)
)

// WrongCodeError is a wrong code presented for an inquiry. Errors wrapping
// it also wrap ErrInquiryWrongCode.
type WrongCodeError struct {
	ID string
	// Attempts is how many wrong codes the inquiry has taken, this one
	// included; at MaxInquiryAttempts it is locked.
	Attempts uint32
}

// AttemptsLeft is how many more wrong codes the inquiry takes; 0 once it
// is locked.
func (e *WrongCodeError) AttemptsLeft() int { return max(MaxInquiryAttempts-int(e.Attempts), 0) }

func (e *WrongCodeError) Error() string {
	if e.AttemptsLeft() == 0 {
		return fmt.Sprintf("%v: inquiry %s is now locked after %d wrong codes", ErrInquiryWrongCode, e.ID, e.Attempts)
	}
	return fmt.Sprintf("%v: inquiry %s, %d of %d attempts left", ErrInquiryWrongCode, e.ID, e.AttemptsLeft(), MaxInquiryAttempts)
}

func (e *WrongCodeError) Unwrap() error { return ErrInquiryWrongCode }

// putInquiry writes an inquiry record back.
func putInquiry(b engine.Bucket, inq *storev1.Inquiry) error {
	v, err := marshal(inq)
	if err != nil {
		return err
	}
	return b.Put([]byte(inq.Id), v)
}

// useInquiry checks the reservation's inquiry and marks it used by its
// certificates (R-A2): it must exist, be the holder's, be unused and
// unexpired, and the code must match. Refusals do not say which part failed
// beyond what the caller already knows, so a guessed code learns nothing.
func useInquiry(tx engine.Tx, r Reservation, holder *storev1.Certificate) error {
	b := tx.Bucket(bucketInquiry)
	inq, err := getInquiry(b, r.InquiryID)
	if err != nil {
		return fmt.Errorf("%w: no inquiry %s", ErrInquiry, r.InquiryID)
	}
	sum := sha256.Sum256([]byte(r.InquiryCode))
	switch {
	case inq.MunicipalityCode != holder.MunicipalityCode || inq.HolderId != holder.HolderId:
		return fmt.Errorf("%w: inquiry %s is for another holder", ErrInquiry, inq.Id)
	case inq.UsedAt != nil:
		return fmt.Errorf("%w: inquiry %s was already used", ErrInquiry, inq.Id)
	case !r.Now.Before(inq.ExpiresAt.AsTime()):
		return fmt.Errorf("%w: inquiry %s expired at %s", ErrInquiry, inq.Id, inq.ExpiresAt.AsTime().Format("2006-01-02T15:04:05Z07:00"))
	case inq.FailedAttempts >= MaxInquiryAttempts:
		return fmt.Errorf("%w: inquiry %s", ErrInquiryLocked, inq.Id)
	case subtle.ConstantTimeCompare(sum[:], inq.CodeSha256) != 1:
		// Counted here; Reserve commits the count, and only the count,
		// while refusing the reservation.
		inq.FailedAttempts++
		if err := putInquiry(b, inq); err != nil {
			return err
		}
		return &WrongCodeError{ID: inq.Id, Attempts: inq.FailedAttempts}
	}
	inq.UsedAt = timestamppb.New(r.Now)
	for _, c := range r.Certs {
		inq.UsedBy = append(inq.UsedBy, c.Serial)
	}
	return putInquiry(b, inq)
}

// releaseInquiry makes an inquiry usable again when the issuance that used
// it was abandoned.
func releaseInquiry(tx engine.Tx, id string) error {
	b := tx.Bucket(bucketInquiry)
	inq, err := getInquiry(b, id)
	if err != nil {
		return err
	}
	inq.UsedAt, inq.UsedBy = nil, nil
	return putInquiry(b, inq)
}

// BlockKey records a public key that must never be certified again (R-V8).
// Blocking an already blocked key keeps the first record.
func (s *Store) BlockKey(k *storev1.BlockedKey) error {
	if len(k.GetPublicKeySha256()) != sha256.Size || k.GetBlockedAt() == nil {
		return fmt.Errorf("store: block key: %w: incomplete record", ErrInvalidArgument)
	}
	err := s.db.Update(func(tx engine.Tx) error {
		b := tx.Bucket(bucketBlocked)
		if b.Get(k.PublicKeySha256) != nil {
			return nil
		}
		v, err := marshal(k)
		if err != nil {
			return err
		}
		return b.Put(k.PublicKeySha256, v)
	})
	if err != nil {
		return fmt.Errorf("store: block key: %w", err)
	}
	return nil
}

// KeyBlocked reports whether a public key (by SPKI SHA-256) is blocked.
func (s *Store) KeyBlocked(spkiSHA256 []byte) (bool, error) {
	var blocked bool
	err := s.db.View(func(tx engine.Tx) error {
		blocked = tx.Bucket(bucketBlocked).Get(spkiSHA256) != nil
		return nil
	})
	return blocked, err
}
