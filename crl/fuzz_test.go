package crl_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// FuzzCheck gives Check arbitrary bytes for the sample request: it reads
// them with its own cryptobyte walk, which must never panic, and must
// accept only the CRL Build made (RSA PKCS #1 v1.5 signatures are
// deterministic, so there is exactly one).
//
//	go test -run '^$' -fuzz FuzzCheck -fuzztime 1m ./crl
func FuzzCheck(f *testing.F) {
	fx := fixtures()[0]
	req := request(fx, revocations(testenv.Serial(), testenv.Serial(), testenv.Serial(), testenv.Serial(), testenv.Serial(), testenv.Serial()))
	good, err := crl.Build(req)
	if err != nil {
		f.Fatal(err)
	}
	empty := request(fx, nil)
	emptyDER, err := crl.Build(empty)
	if err != nil {
		f.Fatal(err)
	}
	later := request(fx, []crl.Entry{{Serial: testenv.Serial(), RevokedAt: time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), Reason: superseded}})
	later.ThisUpdate, later.NextUpdate = time.Date(2050, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(2050, 1, 3, 0, 0, 0, 0, time.UTC)
	laterDER, err := crl.Build(later)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(emptyDER)
	f.Add(laterDER)
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, der []byte) {
		err := crl.Check(der, req)
		if err == nil && !bytes.Equal(der, good) {
			t.Fatalf("Check accepted %x", der)
		}
		if err != nil && !errors.Is(err, crl.ErrMismatch) {
			t.Fatalf("Check: %v does not wrap ErrMismatch", err)
		}
	})
}
