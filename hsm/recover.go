package hsm

import (
	"errors"

	"github.com/miekg/pkcs11"
)

// recover does what the failure err of an attempt at place calls for (see
// recoveryFor), and reports whether trying again can help: only if a
// recovery happened, or another Token's already did.
func (t *Token) recover(at place, err error) (recovery, bool) {
	var later retryLater
	switch {
	case errors.Is(err, ErrClosed), isLoginRefusal(err), errors.As(err, &later):
		return reportIt, false
	case errors.As(err, new(keyVanished)):
		// The token lost the objects of a key it showed before: only a
		// fresh initialisation makes the library read them again.
		return reinitModule, t.reinitialize(at.epoch)
	case errors.Is(err, ErrTokenNotFound):
		if !t.wasConnected() {
			return reportIt, false
		}
		// Still gone after reconnecting. Some clients, p11-kit's among
		// them, see a restarted server only after C_Finalize and
		// C_Initialize.
		return reinitModule, t.reinitialize(at.epoch)
	}
	how := recoveryFor(err)
	switch how {
	case newSession:
		return how, true // put dropped the session
	case relogin:
		t.disconnect(at, true) // the sessions stay open, and are logged in again with the next login
		return how, true
	case reconnect:
		t.disconnect(at, false) // the token's sessions went with it
		return how, true
	case reinitModule:
		return how, t.reinitialize(at.epoch)
	}
	return how, false
}

// disconnect makes the next attempt find the token and log in again, if the
// Token is still on the connection at: a newer one, made by another
// operation since, is healthy and stays.
func (t *Token) disconnect(at place, keepIdle bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.connected || t.modEpoch != at.epoch || t.gen != at.gen {
		return
	}
	t.connected = false
	if !keepIdle {
		t.idle = nil
	}
}

// reinitialize asks the module to re-initialise itself after a failure in
// epoch; see module.reinitialize.
func (t *Token) reinitialize(epoch uint64) bool {
	t.mu.Lock()
	t.askedReinit = true
	t.mu.Unlock()
	return t.mod.reinitialize(epoch, t.cfg.RetryInterval)
}

// loggedIn checks whether session s is logged in. A key that cannot be found,
// or whose handle went stale, may only be out of sight because the token
// logged out (it does when the application's last session on it closes):
// errNotLoggedIn then asks for a new login instead of reporting the key
// missing.
func loggedIn(s session) error {
	info, err := s.ctx.GetSessionInfo(s.h)
	if err != nil {
		return err
	}
	if info.State != pkcs11.CKS_RW_USER_FUNCTIONS && info.State != pkcs11.CKS_RO_USER_FUNCTIONS {
		return errNotLoggedIn
	}
	return nil
}
