package hsm

import (
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"
)

// connect finds the token's slot, opens a session and logs in; t.mu is held
// and the caller holds mod.opMu for reading. Idle sessions of an earlier
// module epoch died with its finalisation and are forgotten, not closed.
func (t *Token) connect() (session, error) {
	t.connected = false
	raw, epoch, err := t.mod.state()
	s := session{epoch: epoch, gen: t.gen}
	if err != nil {
		return s, err
	}
	if t.modEpoch != epoch {
		t.idle = nil
	}
	s.ctx = t.api(raw)
	slot, info, err := t.findSlot(s.ctx)
	if err != nil {
		return s, err
	}
	if slot != t.slot {
		t.idle = nil // sessions of another slot are of no use
	}
	// Refuse to try a PIN that could lock the token; the flags are read
	// before logging in precisely so that no attempt is spent.
	switch {
	case info.Flags&pkcs11.CKF_USER_PIN_LOCKED != 0:
		return s, fmt.Errorf("%w (the token reports it; the security officer must unblock it)", ErrPINLocked)
	case info.Flags&pkcs11.CKF_USER_PIN_FINAL_TRY != 0:
		return s, fmt.Errorf("%w: the token counts earlier wrong attempts; check the PIN, then log in once with it by other means (pkcs11-tool --login) to reset the count", ErrPINFinalTry)
	}
	h, err := s.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return s, err
	}
	// The login state belongs to the application, not the session: one
	// login serves every session this process opens on the token.
	if err := t.mod.login(s.ctx, h, slot, t.cfg.PIN); err != nil {
		_ = s.ctx.CloseSession(h) // the login error is the one to report
		return s, err
	}
	t.slot = slot
	t.connected, t.everConnected, t.modEpoch = true, true, epoch
	t.gen++
	s.h, s.gen = h, t.gen
	if t.askedReinit {
		t.askedReinit = false
		t.mod.reconnected()
	}
	return s, nil
}

// findSlot returns the slot of the one token labelled cfg.TokenLabel, and
// what the token says about itself.
func (t *Token) findSlot(api cryptoki) (uint, pkcs11.TokenInfo, error) {
	slots, err := api.GetSlotList(true)
	if err != nil {
		return 0, pkcs11.TokenInfo{}, err
	}
	var found []uint
	var info pkcs11.TokenInfo
	var seen []string
	for _, slot := range slots {
		ti, err := api.GetTokenInfo(slot)
		if err != nil {
			continue // a slot that cannot describe its token is not ours
		}
		label := strings.TrimRight(ti.Label, " \x00")
		seen = append(seen, fmt.Sprintf("%q", label))
		if label == t.cfg.TokenLabel {
			found = append(found, slot)
			info = ti
		}
	}
	switch len(found) {
	case 1:
		return found[0], info, nil
	case 0:
		others := "no initialised tokens"
		if len(seen) > 0 {
			others = "tokens seen: " + strings.Join(seen, ", ")
		}
		return 0, info, fmt.Errorf("%w %q in module %s (%s)", ErrTokenNotFound, t.cfg.TokenLabel, t.cfg.Module, others)
	default:
		return 0, info, fmt.Errorf("%w %q in module %s: %d of them (labels must be unique)", ErrTokenAmbiguous, t.cfg.TokenLabel, t.cfg.Module, len(found))
	}
}
