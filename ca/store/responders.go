package store

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ResponderCertificate returns the current delegated OCSP responder
// certificate of the HSM key labelled keyLabel (R-R6), or nil when none was
// saved.
func (s *Store) ResponderCertificate(keyLabel string) ([]byte, error) {
	var der []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		der = bytes.Clone(tx.Bucket(bucketMeta).Get(append(bytes.Clone(metaResponder), keyLabel...)))
		return nil
	})
	return der, err
}

// SaveResponderCertificate makes der the current responder certificate of
// keyLabel. Who certified it is in the audit log, written by the certifier.
func (s *Store) SaveResponderCertificate(keyLabel string, der []byte) error {
	if keyLabel == "" || len(der) == 0 {
		return fmt.Errorf("store: save responder certificate: %w: label and certificate are required", ErrInvalidArgument)
	}
	return s.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(append(bytes.Clone(metaResponder), keyLabel...), bytes.Clone(der))
	})
}
