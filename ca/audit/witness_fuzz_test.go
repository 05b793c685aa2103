package audit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// FuzzDecodeWitness: the witness is read from the HSM, where it could be
// damaged: decoding never panics, and whatever decodes verifies with the
// audit key and encodes to bytes that decode again.
func FuzzDecodeWitness(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cp := &storev1.AuditCheckpoint{Seq: 7, RecordSha256: make([]byte, 32), Time: timestamppb.Now(), KeyLabel: KeyLabel}
	sig, err := sign(context.Background(), key, digest(cp))
	if err != nil {
		f.Fatal(err)
	}
	cp.Signature = sig
	for _, sealed := range []bool{false, true} {
		w := &Witness{Counter: 3, Checkpoint: cp, Sealed: sealed}
		if w.signature, err = sign(context.Background(), key, witnessDigest(w.Counter, sealed, cp)); err != nil {
			f.Fatal(err)
		}
		good, err := encodeWitness(w)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(good)
		f.Add(good[:len(good)-1])
	}
	f.Add(witnessMagic)
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeWitness(b, key.Public())
		if err != nil {
			return
		}
		again, err := encodeWitness(w)
		if err != nil || w.Seq() == 0 {
			t.Fatalf("a decoded witness of record %d does not encode: %v", w.Seq(), err)
		}
		if _, err := decodeWitness(again, key.Public()); err != nil {
			t.Fatalf("a decoded witness, encoded again, does not decode: %v", err)
		}
	})
}
