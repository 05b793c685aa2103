package hsm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/shomei-pki/shomei/internal/softhsm"
)

// TestWrongPINWhileLoggedIn: the token's login belongs to the process, so a
// second Token on a token another Token logged in to is told "already logged
// in" whatever PIN it gives. It must still be refused a wrong PIN.
func TestWrongPINWhileLoggedIn(t *testing.T) {
	first := openToken(t, labelShared)
	ctx := context.Background()
	s, err := first.GenerateKey(ctx, KeyRef{Label: "shared", ID: randomID(t)}, ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := softhsm.Module()
	if err != nil {
		t.Fatal(err)
	}
	second, err := Open(Config{Module: mod, TokenLabel: labelShared, PIN: "not-the-pin"})
	if err == nil {
		second.Close()
		t.Fatal("Open with a wrong PIN succeeded while another Token is logged in")
	}
	if !errors.Is(err, ErrWrongPIN) || !strings.HasPrefix(err.Error(), `hsm: token "hsm-shared": open token: the PIN is wrong`) {
		t.Fatalf("Open = %v, want ErrWrongPIN", err)
	}
	// The right PIN is accepted, and the first Token is undisturbed.
	third := openToken(t, labelShared)
	if _, err := third.Signer(ctx, s.Ref()); err != nil {
		t.Fatal(err)
	}
	if err := sign(s); err != nil {
		t.Fatal(err)
	}
}

// TestPINRefusalsAreFinal: a PIN the token refused is not tried again until
// the Token is reopened, and a PIN that could lock the token is not tried at
// all.
func TestPINRefusalsAreFinal(t *testing.T) {
	ctx := context.Background()
	t.Run("PIN changed while running", func(t *testing.T) {
		f := newFaults()
		tok := openFaulty(t, labelFaults, f, func(c *Config) { c.RetryInterval = 1 }) // no grace: every operation could try
		s, err := tok.GenerateKey(ctx, KeyRef{Label: "pin", ID: randomID(t)}, ECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		// The operator changes the PIN in the HSM, which then goes away
		// and comes back: the Token's PIN is wrong from now on.
		tok.mu.Lock()
		tok.cfg.PIN = "an-old-pin"
		tok.mu.Unlock()
		forceReinit(t, tok)
		logins := f.count("Login")
		for i := range 10 {
			if err := sign(s); !errors.Is(err, ErrWrongPIN) {
				t.Fatalf("sign %d = %v, want ErrWrongPIN", i, err)
			}
		}
		if _, err := tok.Keys(ctx); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("Keys = %v, want ErrWrongPIN", err)
		}
		if n := f.count("Login") - logins; n != 1 {
			t.Errorf("11 operations tried the PIN %d times, want once", n)
		}
	})

	flagCases := []struct {
		name  string
		flags uint
		is    error
		want  string
	}{
		{"final try", pkcs11.CKF_USER_PIN_FINAL_TRY, ErrPINFinalTry, "one more wrong PIN attempt would lock the PIN"},
		{"locked", pkcs11.CKF_USER_PIN_LOCKED, ErrPINLocked, "the PIN is locked"},
	}
	for _, tc := range flagCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaults()
			f.flags = tc.flags
			tok, err := openFaultyErr(t, labelFaults, f)
			if err == nil {
				tok.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open = %v, want %v saying %q", err, tc.is, tc.want)
			}
			if n := f.count("Login"); n != 0 {
				t.Errorf("tried the PIN %d times", n)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		f := newFaults()
		tok := openFaulty(t, labelFaults, f, func(c *Config) { c.RetryInterval = 1 })
		f.failNext("Login", ckr(pkcs11.CKR_PIN_EXPIRED))
		tok.mu.Lock()
		tok.connected = false // as after a USER_NOT_LOGGED_IN
		tok.mu.Unlock()
		for range 3 {
			_, err := tok.Keys(ctx)
			if err == nil || !strings.Contains(err.Error(), "the PIN has expired") {
				t.Fatalf("Keys = %v, want an error saying the PIN has expired", err)
			}
		}
		if n := f.count("Login"); n != 2 {
			t.Errorf("logins: %d, want 2 (at Open, and the expired one)", n)
		}
	})
}

// TestLoginErrorsInWords: the login failures an operator can fix are
// explained, and the return code kept.
func TestLoginErrorsInWords(t *testing.T) {
	cases := []struct {
		code uint
		is   error
		want string
	}{
		{pkcs11.CKR_PIN_INCORRECT, ErrWrongPIN, "the PIN is wrong (pkcs11: 0xA0: CKR_PIN_INCORRECT)"},
		{pkcs11.CKR_PIN_LEN_RANGE, ErrWrongPIN, "the PIN is wrong: it is shorter or longer than the token accepts (pkcs11: 0xA2: CKR_PIN_LEN_RANGE)"},
		{pkcs11.CKR_PIN_LOCKED, ErrPINLocked, "the PIN is locked after too many wrong attempts (pkcs11: 0xA4: CKR_PIN_LOCKED)"},
		{pkcs11.CKR_PIN_EXPIRED, nil, "the PIN has expired: set a new one"},
		{pkcs11.CKR_USER_PIN_NOT_INITIALIZED, nil, "the token's user PIN has never been set"},
	}
	for _, tc := range cases {
		t.Run(ckr(tc.code).Error(), func(t *testing.T) {
			f := newFaults()
			f.failNext("Login", ckr(tc.code))
			tok, err := openFaultyErr(t, labelFaults, f)
			if err == nil {
				tok.Close()
				t.Fatal("Open succeeded")
			}
			if (tc.is != nil && !errors.Is(err, tc.is)) || !strings.HasPrefix(err.Error(), `hsm: token "hsm-faults": open token: `+tc.want) {
				t.Errorf("Open = %v, want %q", err, tc.want)
			}
		})
	}
}
