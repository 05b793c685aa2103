package hsm

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// A PKCS#11 library is initialised once per process however many tokens use
// it, so Tokens share one module per library file. Re-initialising it (the
// only way some clients, such as p11-kit's remote client, reconnect after
// their server went away) affects every Token on it: the module's epoch tells
// them that their sessions, object handles and logins are gone.
type module struct {
	key  string // canonical path: the registry key, and what is loaded
	path string // the path as configured, for messages

	// opMu is held for reading around every PKCS#11 call and for writing to
	// finalise the module, which the standard forbids while other threads
	// are inside the library.
	opMu sync.RWMutex

	// loginMu serialises C_Login with recording its outcome, so that a
	// Token told "already logged in" always finds the PIN that did it.
	loginMu sync.Mutex

	mu       sync.Mutex
	ctx      *pkcs11.Ctx
	refs     int
	epoch    uint64
	live     bool // C_Initialize succeeded for this epoch
	decided  bool // a C_Initialize has answered, so foreign is known
	foreign  bool // other code in the process initialised the library first: never finalise it
	logins   map[uint][sha256.Size]byte
	reinitAt time.Time // last re-initialisation
	failures int       // re-initialisations since a Token that asked for one reconnected
}

// maxReinitBackoff caps the wait between two re-initialisations.
const maxReinitBackoff = 5 * time.Second

var (
	modulesMu sync.Mutex
	modules   = map[string]*module{}
)

// canonicalPath names the library file behind path, so that two spellings of
// it (a symbolic link, a relative path) share one module. A bare file name is
// left to the dynamic loader's search, as dlopen does.
func canonicalPath(path string) string {
	if !strings.Contains(path, "/") {
		return path
	}
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	if p, err := filepath.Abs(path); err == nil {
		path = p
	}
	return path
}

// acquireModule loads the library at path (once per process) and initialises it.
func acquireModule(path string) (*module, error) {
	key := canonicalPath(path)
	modulesMu.Lock()
	defer modulesMu.Unlock()
	m := modules[key]
	if m == nil {
		ctx := pkcs11.New(key)
		if ctx == nil {
			return nil, fmt.Errorf("hsm: cannot load the PKCS#11 module %s (missing file, or not a PKCS#11 library)", path)
		}
		m = &module{key: key, path: path, ctx: ctx}
		modules[key] = m
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live {
		if err := m.initialize(); err != nil {
			if m.refs == 0 {
				m.ctx.Destroy()
				m.ctx = nil
				delete(modules, key)
			}
			return nil, fmt.Errorf("hsm: initialising the PKCS#11 module %s: %w", path, err)
		}
	}
	m.refs++
	return m, nil
}

// initialize calls C_Initialize; m.mu is held. If the very first call finds
// the library already initialised, other code in this process (another
// handle on the same file) owns it, and finalising it would pull it from
// under that code: the module remembers never to.
func (m *module) initialize() error {
	err := m.ctx.Initialize()
	if code, ok := ckrCode(err); ok && code == pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
		if !m.decided {
			m.foreign = true
		}
		err = nil
	}
	if err != nil {
		return err
	}
	m.decided, m.live = true, true
	return nil
}

// current returns the context and epoch without initialising anything.
func (m *module) current() (ctx *pkcs11.Ctx, epoch uint64, live bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ctx, m.epoch, m.live && m.ctx != nil
}

// state returns the context and the epoch it belongs to, initialising the
// module if an earlier re-initialisation left it uninitialised.
func (m *module) state() (*pkcs11.Ctx, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil {
		return nil, m.epoch, ErrClosed
	}
	if !m.live {
		if err := m.initialize(); err != nil {
			return nil, m.epoch, err
		}
	}
	return m.ctx, m.epoch, nil
}

// backoff is how long after the last re-initialisation the next may happen:
// base after the first, doubled after every further one that did not bring
// back the Token that asked for it, up to maxReinitBackoff (or base, if
// larger).
// m.mu is held.
func (m *module) backoff(base time.Duration) time.Duration {
	limit := max(base, maxReinitBackoff)
	d := base
	for range m.failures - 1 {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// reinitialize finalises and re-initialises the module so that every Token
// on it reconnects from scratch, unless another Token already did so since
// epoch seen, or the last re-initialisation is more recent than the backoff
// allows. It reports whether the module has moved on from epoch seen.
//
// A module whose library other code initialised is never finalised: it is
// only initialised again (which may be needed after its owner finalised it),
// and its epoch moves on.
func (m *module) reinitialize(seen uint64, base time.Duration) bool {
	due := func() bool { return m.reinitAt.IsZero() || time.Since(m.reinitAt) >= m.backoff(base) }
	m.mu.Lock()
	moved, ok := m.epoch != seen, due()
	m.mu.Unlock()
	if moved || !ok {
		return moved // spare the other Tokens the write lock
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil || m.epoch != seen || !due() {
		return m.epoch != seen
	}
	m.epoch++
	m.reinitAt = time.Now()
	m.failures++
	m.logins = nil
	if m.live && !m.foreign {
		_ = m.ctx.Finalize() // the old connection is already broken; its error says nothing new
	}
	m.live = false
	_ = m.initialize() // a failure shows up, explained, when a Token next uses the module
	return true
}

// reconnected tells the module that a Token which asked for a
// re-initialisation has its token back: the backoff starts over.
func (m *module) reconnected() {
	m.mu.Lock()
	m.failures = 0
	m.mu.Unlock()
}

// login logs in on session h of slot with pin, or, when the token is already
// logged in (the login state belongs to the application, so another Token
// of this process may have done it), checks pin against the PIN that did.
func (m *module) login(api cryptoki, h pkcs11.SessionHandle, slot uint, pin string) error {
	sum := sha256.Sum256([]byte(pin))
	m.loginMu.Lock()
	defer m.loginMu.Unlock()
	err := api.Login(h, pkcs11.CKU_USER, pin)
	code, isCKR := ckrCode(err)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil:
		if m.logins == nil {
			m.logins = map[uint][sha256.Size]byte{}
		}
		m.logins[slot] = sum
		return nil
	case isCKR && code == pkcs11.CKR_USER_ALREADY_LOGGED_IN:
		known, ok := m.logins[slot]
		if !ok {
			return errors.New("the token is already logged in by other code in this process, so the PIN cannot be checked; refusing to use it")
		}
		if subtle.ConstantTimeCompare(known[:], sum[:]) != 1 {
			return fmt.Errorf("%w (it differs from the PIN this process logged in with)", ErrWrongPIN)
		}
		return nil
	}
	return err
}

// release drops one reference; the last one finalises and unloads the module.
// Only the last one takes opMu for writing: the others leave the Tokens still
// using the module undisturbed.
func (m *module) release() error {
	modulesMu.Lock()
	m.mu.Lock()
	if m.refs > 1 {
		m.refs--
		m.mu.Unlock()
		modulesMu.Unlock()
		return nil
	}
	m.mu.Unlock()
	modulesMu.Unlock()

	// Probably the last reference: wait for calls in flight, and look again,
	// since a Token may have acquired the module meanwhile.
	m.opMu.Lock()
	defer m.opMu.Unlock()
	modulesMu.Lock()
	defer modulesMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refs--
	if m.refs > 0 {
		return nil
	}
	delete(modules, m.key)
	var err error
	if m.live && !m.foreign {
		err = m.ctx.Finalize()
	}
	m.live = false
	m.ctx.Destroy()
	m.ctx = nil
	if code, ok := ckrCode(err); ok && code == pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("hsm: finalising %s: %w", m.path, err)
	}
	return nil
}
