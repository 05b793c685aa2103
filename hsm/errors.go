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
	ErrTokenNotFound    = errors.New("no token with that label")
	ErrTokenUnavailable = errors.New("the HSM token is unavailable")
	ErrKeyNotFound      = errors.New("no private key with that label and id")
	ErrKeyAmbiguous     = errors.New("more than one private key has that label and id")
	ErrKeyExists        = errors.New("a key with that label and id already exists")
	ErrKeyMismatch      = errors.New("the key in the token does not match the certificate")
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

// goneCodes are the return values that mean the token, the connection to it,
// or our sessions on it went away. Any of them makes the Token re-initialise
// the module and log in again before the next attempt.
var goneCodes = map[uint]bool{
	pkcs11.CKR_GENERAL_ERROR:            true,
	pkcs11.CKR_DEVICE_ERROR:             true,
	pkcs11.CKR_DEVICE_REMOVED:           true,
	pkcs11.CKR_TOKEN_NOT_PRESENT:        true,
	pkcs11.CKR_TOKEN_NOT_RECOGNIZED:     true,
	pkcs11.CKR_SESSION_HANDLE_INVALID:   true,
	pkcs11.CKR_SESSION_CLOSED:           true,
	pkcs11.CKR_SLOT_ID_INVALID:          true,
	pkcs11.CKR_USER_NOT_LOGGED_IN:       true,
	pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED: true,
	pkcs11.CKR_FUNCTION_FAILED:          true,
	pkcs11.CKR_DEVICE_MEMORY:            true,
	pkcs11.CKR_OPERATION_ACTIVE:         true, // a session left mid-operation by a crash of the other side
}

// isGone reports whether err means the token must be reconnected.
func isGone(err error) bool {
	code, ok := ckrCode(err)
	return ok && goneCodes[code]
}

// isStaleHandle reports whether err means an object handle we cached is no
// longer valid (for instance after the token was re-initialised).
func isStaleHandle(err error) bool {
	code, ok := ckrCode(err)
	return ok && (code == pkcs11.CKR_KEY_HANDLE_INVALID || code == pkcs11.CKR_OBJECT_HANDLE_INVALID)
}

// explain wraps a PKCS#11 error from op on the token with a sentinel that
// says what it means, keeping the raw return code in the text.
func (t *Token) explain(op string, err error) error {
	if err == nil {
		return nil
	}
	code, ok := ckrCode(err)
	if !ok {
		return fmt.Errorf("hsm: %s on token %q: %w", op, t.cfg.TokenLabel, err)
	}
	var kind error
	switch {
	case code == pkcs11.CKR_PIN_INCORRECT:
		kind = ErrWrongPIN
	case code == pkcs11.CKR_PIN_LOCKED:
		kind = ErrPINLocked
	case goneCodes[code]:
		kind = ErrTokenUnavailable
	}
	if kind == nil {
		return fmt.Errorf("hsm: %s on token %q: %w", op, t.cfg.TokenLabel, err)
	}
	return fmt.Errorf("hsm: %s on token %q: %w (%v)", op, t.cfg.TokenLabel, kind, err)
}
