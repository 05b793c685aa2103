package hsm

import (
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Sentinel errors. Operations wrap them with the token, key and PKCS#11
// return code involved; test with errors.Is.
var (
	ErrWrongPIN         = errors.New("the PIN is wrong")
	ErrPINLocked        = errors.New("the PIN is locked after too many wrong attempts")
	ErrPINFinalTry      = errors.New("not logging in: one more wrong PIN attempt would lock the PIN")
	ErrTokenNotFound    = errors.New("no token with that label")
	ErrTokenAmbiguous   = errors.New("more than one token has that label")
	ErrTokenUnavailable = errors.New("the HSM token is unavailable")
	ErrKeyNotFound      = errors.New("no private key with that label and id")
	ErrKeyAmbiguous     = errors.New("more than one private key has that label and id")
	ErrKeyExists        = errors.New("a key with that label and id already exists")
	ErrKeyMismatch      = errors.New("the key in the token does not match the certificate")
	ErrBadSignature     = errors.New("the token's signature does not verify with the key's public key")
	ErrPoolExhausted    = errors.New("every HSM session is busy")
	ErrClosed           = errors.New("the token has been closed")
	ErrUnsupported      = errors.New("unsupported by this signer")
)

// ckrCode returns the PKCS#11 return value inside err, if there is one.
func ckrCode(err error) (uint, bool) {
	var e pkcs11.Error
	if errors.As(err, &e) {
		return uint(e), true
	}
	return 0, false
}

func isCode(err error, codes ...uint) bool {
	code, ok := ckrCode(err)
	if !ok {
		return false
	}
	for _, c := range codes {
		if code == c {
			return true
		}
	}
	return false
}

// recovery is what a failed operation calls for, graded from the least to
// the most disruptive: only a failure of the library or the device itself
// re-initialises the module, which every Token on it feels.
type recovery int

const (
	reportIt     recovery = iota // nothing to recover: report the error as it is
	newSession                   // the session is gone: drop it, try once more on a new one
	relogin                      // the login is gone: reconnect this Token and log in again
	reconnect                    // the token went away: reconnect this Token; if it stays gone, re-initialise
	reinitModule                 // the library or the device failed: re-initialise the module
)

// recoveryFor grades a failure. Anything not listed (CKR_FUNCTION_FAILED,
// CKR_GENERAL_ERROR, CKR_DEVICE_MEMORY, …) says nothing about the connection
// and is reported as it is.
func recoveryFor(err error) recovery {
	code, ok := ckrCode(err)
	if !ok {
		return reportIt
	}
	switch code {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_OPERATION_ACTIVE:
		return newSession
	case pkcs11.CKR_USER_NOT_LOGGED_IN:
		return relogin
	case pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_SLOT_ID_INVALID:
		return reconnect
	case pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
		return reinitModule
	}
	return reportIt
}

// sessionDead reports whether err says that the library already closed the
// session. Its handle must not be closed again: the library may have given
// the same number to a session of another Token since.
func sessionDead(err error) bool {
	return isCode(err, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_SLOT_ID_INVALID,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED)
}

// isLoginRefusal reports whether err means the PIN cannot log in as it is:
// trying it again would only count more wrong attempts towards a lockout.
func isLoginRefusal(err error) bool {
	return errors.Is(err, ErrWrongPIN) || errors.Is(err, ErrPINLocked) ||
		isCode(err, pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_LEN_RANGE, pkcs11.CKR_PIN_LOCKED, pkcs11.CKR_PIN_EXPIRED)
}

// errNotLoggedIn is returned when a session turns out not to be logged in
// (a key is missing, or its handle went stale): it asks for a new login.
var errNotLoggedIn = fmt.Errorf("the session is not logged in: %w", pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN))

// meaning says in words what a PKCS#11 return code means for the operator,
// with the sentinel that callers test for, if any.
func meaning(code uint) (kind error, words string) {
	switch code {
	case pkcs11.CKR_PIN_INCORRECT:
		return ErrWrongPIN, ""
	case pkcs11.CKR_PIN_LEN_RANGE:
		return ErrWrongPIN, "it is shorter or longer than the token accepts"
	case pkcs11.CKR_PIN_LOCKED:
		return ErrPINLocked, ""
	case pkcs11.CKR_PIN_EXPIRED:
		return nil, "the PIN has expired: set a new one with the token's own tools, then update the PIN file"
	case pkcs11.CKR_USER_PIN_NOT_INITIALIZED:
		return nil, "the token's user PIN has never been set: set it with the security officer PIN"
	case pkcs11.CKR_SESSION_COUNT:
		return ErrPoolExhausted, "the HSM refuses to open another session: lower the pool size, or stop other clients of the token"
	}
	if recoveryFor(pkcs11.Error(code)) != reportIt {
		return ErrTokenUnavailable, ""
	}
	return nil, ""
}

// explain wraps an error from op on the token with a sentinel and words that
// say what it means, keeping the raw return code in the text.
func (t *Token) explain(op string, err error) error {
	if err == nil {
		return nil
	}
	prefix := fmt.Sprintf("hsm: token %q: %s", t.cfg.TokenLabel, op)
	if errors.Is(err, ErrTokenNotFound) {
		prefix = "hsm: " + op // the error names the token and what was seen instead
	}
	code, ok := ckrCode(err)
	if !ok {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	kind, words := meaning(code)
	if kind != nil && errors.Is(err, kind) {
		kind = nil // already said
	}
	switch {
	case kind != nil && words != "":
		return fmt.Errorf("%s: %w: %s (%w)", prefix, kind, words, err)
	case kind != nil:
		return fmt.Errorf("%s: %w (%w)", prefix, kind, err)
	case words != "":
		return fmt.Errorf("%s: %s (%w)", prefix, words, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
