package hsm

import (
	"context"
	"crypto"
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shomei-pki/shomei/internal/metricstest"
)

func TestErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err     error
		signing bool
		want    string
	}{
		{fmt.Errorf("x: %w", ErrPoolExhausted), true, ErrorPool},
		{pkcs11.Error(pkcs11.CKR_PIN_INCORRECT), false, ErrorLogin},
		{ErrPINLocked, false, ErrorLogin},
		{pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN), true, ErrorLogin},
		{pkcs11.Error(pkcs11.CKR_SESSION_HANDLE_INVALID), true, ErrorSession},
		{pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT), true, ErrorDevice},
		{pkcs11.Error(pkcs11.CKR_DEVICE_ERROR), false, ErrorDevice},
		{fmt.Errorf("%w: gone", ErrTokenUnavailable), true, ErrorDevice},
		{ErrBadSignature, false, ErrorSign},
		{pkcs11.Error(pkcs11.CKR_GENERAL_ERROR), true, ErrorSign},
		{pkcs11.Error(pkcs11.CKR_GENERAL_ERROR), false, ErrorOther},
		{ErrKeyNotFound, false, ErrorOther},
	} {
		if got := ErrorKind(tc.err, tc.signing); got != tc.want {
			t.Errorf("ErrorKind(%v, signing %v) = %q, want %q", tc.err, tc.signing, got, tc.want)
		}
	}
}

// TestTokenMetrics: signatures are timed; a session failure that a new
// session mends counts and leaves the HSM up; one that persists counts and
// takes it down until an operation succeeds; a sign failure that says
// nothing about the token leaves it up.
func TestTokenMetrics(t *testing.T) {
	f := newFaults()
	tok := openFaulty(t, labelFaults, f)
	reg := prometheus.NewPedanticRegistry()
	if err := tok.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := tok.GenerateKey(ctx, KeyRef{Label: "metrics", ID: randomID(t)}, ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	digest := digestOf(crypto.SHA256, []byte("x"))
	sign := func() error { _, err := s.Sign(nil, digest, crypto.SHA256); return err }
	check := func(step string, up, signs float64, errs map[string]float64) {
		t.Helper()
		got := metricstest.Gather(t, reg)
		if got["shomei_hsm_up"] != up || got["shomei_hsm_sign_duration_seconds"] != signs || got["shomei_hsm_sessions_in_use"] != 0 {
			t.Errorf("%s: up %v, signatures %v, in use %v; want %v, %v, 0", step, got["shomei_hsm_up"], got["shomei_hsm_sign_duration_seconds"], got["shomei_hsm_sessions_in_use"], up, signs)
		}
		for _, k := range errorKinds {
			if v := got[`shomei_hsm_errors_total{kind="`+k+`"}`]; v != errs[k] {
				t.Errorf("%s: errors of kind %s = %v, want %v", step, k, v, errs[k])
			}
		}
	}
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	check("one signature", 1, 1, nil)

	f.failNext("Sign", pkcs11.Error(pkcs11.CKR_SESSION_HANDLE_INVALID))
	if err := sign(); err != nil {
		t.Fatalf("a lost session was not mended: %v", err)
	}
	check("a session mended", 1, 2, map[string]float64{ErrorSession: 1})

	f.failAlways("Sign", pkcs11.Error(pkcs11.CKR_SESSION_CLOSED))
	if err := sign(); err == nil {
		t.Fatal("Sign succeeded with every session failing")
	}
	check("sessions failing", 0, 2, map[string]float64{ErrorSession: 3})

	f.failAlways("Sign", nil)
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	check("back", 1, 3, map[string]float64{ErrorSession: 3})

	f.failNext("Sign", pkcs11.Error(pkcs11.CKR_GENERAL_ERROR))
	if err := sign(); err == nil {
		t.Fatal("Sign succeeded though the token failed it")
	}
	check("a failed signature", 1, 3, map[string]float64{ErrorSession: 3, ErrorSign: 1})
}
