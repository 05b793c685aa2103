package hsm

import (
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// A PKCS#11 library is initialised once per process however many tokens use
// it, so Tokens share one module per library path. Re-initialising it (the
// only way some clients, such as p11-kit's remote client, reconnect after
// their server went away) affects every Token on it: the module's epoch tells
// them that their sessions and handles are gone.
type module struct {
	path string

	// opMu is held for reading around every PKCS#11 call and for writing to
	// finalise the module, which the standard forbids while other threads
	// are inside the library.
	opMu sync.RWMutex

	mu    sync.Mutex
	ctx   *pkcs11.Ctx
	refs  int
	epoch uint64
	live  bool // C_Initialize succeeded for this epoch
}

var (
	modulesMu sync.Mutex
	modules   = map[string]*module{}
)

// acquireModule loads the library at path (once per process) and initialises it.
func acquireModule(path string) (*module, error) {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	m := modules[path]
	if m == nil {
		ctx := pkcs11.New(path)
		if ctx == nil {
			return nil, fmt.Errorf("hsm: cannot load the PKCS#11 module %s (missing file, or not a PKCS#11 library)", path)
		}
		m = &module{path: path, ctx: ctx}
		modules[path] = m
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live {
		if err := m.initialize(); err != nil {
			if m.refs == 0 {
				m.ctx.Destroy()
				delete(modules, path)
			}
			return nil, fmt.Errorf("hsm: initialising the PKCS#11 module %s: %w", path, err)
		}
	}
	m.refs++
	return m, nil
}

// initialize calls C_Initialize; m.mu is held.
func (m *module) initialize() error {
	err := m.ctx.Initialize()
	if code, ok := ckrCode(err); ok && code == pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
		err = nil
	}
	if err != nil {
		return err
	}
	m.live = true
	return nil
}

// state returns the context and the epoch it belongs to.
func (m *module) state() (*pkcs11.Ctx, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil {
		return nil, 0, ErrClosed
	}
	if !m.live {
		if err := m.initialize(); err != nil {
			return nil, m.epoch, err
		}
	}
	return m.ctx, m.epoch, nil
}

// reinitialize finalises and re-initialises the module, unless another Token
// already did so since epoch seen. Every session of every Token on the module
// is invalid afterwards.
func (m *module) reinitialize(seen uint64) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil {
		return ErrClosed
	}
	if m.epoch != seen {
		return nil
	}
	m.epoch++
	if m.live {
		_ = m.ctx.Finalize() // the old connection is already broken; its error says nothing new
		m.live = false
	}
	return m.initialize()
}

// release drops one reference; the last one finalises and unloads the module.
func (m *module) release() error {
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
	delete(modules, m.path)
	var err error
	if m.live {
		err = m.ctx.Finalize()
		m.live = false
	}
	m.ctx.Destroy()
	m.ctx = nil
	if code, ok := ckrCode(err); ok && code == pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED {
		err = nil
	}
	if err != nil {
		return errors.Join(fmt.Errorf("hsm: finalising %s", m.path), err)
	}
	return nil
}
