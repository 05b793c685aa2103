package hsm

import (
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/shomei-pki/shomei/internal/softhsm"
)

// faults stands between one Token and a real SoftHSM2 module: it counts the
// calls the Token makes and fails the ones a test asks it to, so that tests
// can show a Token the failures of a real HSM (device errors, sessions
// closed behind its back, PIN counters) that SoftHSM2 does not produce.
type faults struct {
	mu      sync.Mutex
	calls   map[string]int
	next    map[string][]error // fail the next calls, in order, before calling through
	always  map[string]error   // fail every call, before calling through
	after   map[string][]error // call through, then fail the next calls anyway
	flags   uint               // added to GetTokenInfo's flags
	hidden  int                // GetSlotList lists no slots this many more times (<0: always)
	corrupt bool               // Sign returns a damaged signature
}

func newFaults() *faults {
	return &faults{calls: map[string]int{}, next: map[string][]error{}, always: map[string]error{}, after: map[string][]error{}}
}

// openFaulty opens a Token on label whose module calls go through f.
func openFaulty(t testing.TB, label string, f *faults, mutate ...func(*Config)) *Token {
	t.Helper()
	tok, err := openFaultyErr(t, label, f, mutate...)
	if err != nil {
		t.Fatalf("open(%q): %v", label, err)
	}
	t.Cleanup(func() {
		if err := tok.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tok
}

func openFaultyErr(t testing.TB, label string, f *faults, mutate ...func(*Config)) (*Token, error) {
	t.Helper()
	mod, err := softhsm.Module()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Module: mod, TokenLabel: label, PIN: testPIN, PoolSize: 2, WaitTimeout: 2 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	return open(cfg, f.wrap)
}

func (f *faults) wrap(c cryptoki) cryptoki { return faulty{c, f} }

func (f *faults) failNext(fn string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next[fn] = append(f.next[fn], errs...)
}

func (f *faults) failAlways(fn string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.always, fn)
		return
	}
	f.always[fn] = err
}

func (f *faults) failAfterNext(fn string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.after[fn] = append(f.after[fn], err)
}

func (f *faults) set(apply func(f *faults)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	apply(f)
}

func (f *faults) count(fn string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[fn]
}

// before counts a call and returns the error it must fail with, if any.
func (f *faults) before(fn string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[fn]++
	if err := f.always[fn]; err != nil {
		return err
	}
	if q := f.next[fn]; len(q) > 0 {
		f.next[fn] = q[1:]
		return q[0]
	}
	return nil
}

// afterCall returns the error a call that went through must fail with anyway.
func (f *faults) afterCall(fn string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := f.after[fn]; len(q) > 0 {
		f.after[fn] = q[1:]
		return q[0]
	}
	return nil
}

func ckr(code uint) error { return pkcs11.Error(code) }

type faulty struct {
	cryptoki
	f *faults
}

func (c faulty) GetSlotList(present bool) ([]uint, error) {
	if err := c.f.before("GetSlotList"); err != nil {
		return nil, err
	}
	c.f.mu.Lock()
	hide := c.f.hidden != 0
	if c.f.hidden > 0 {
		c.f.hidden--
	}
	c.f.mu.Unlock()
	if hide {
		return nil, nil
	}
	return c.cryptoki.GetSlotList(present)
}

func (c faulty) GetTokenInfo(slot uint) (pkcs11.TokenInfo, error) {
	if err := c.f.before("GetTokenInfo"); err != nil {
		return pkcs11.TokenInfo{}, err
	}
	info, err := c.cryptoki.GetTokenInfo(slot)
	c.f.mu.Lock()
	info.Flags |= c.f.flags
	c.f.mu.Unlock()
	return info, err
}

func (c faulty) OpenSession(slot, flags uint) (pkcs11.SessionHandle, error) {
	if err := c.f.before("OpenSession"); err != nil {
		return 0, err
	}
	return c.cryptoki.OpenSession(slot, flags)
}

func (c faulty) CloseSession(h pkcs11.SessionHandle) error {
	if err := c.f.before("CloseSession"); err != nil {
		return err
	}
	return c.cryptoki.CloseSession(h)
}

func (c faulty) Login(h pkcs11.SessionHandle, user uint, pin string) error {
	if err := c.f.before("Login"); err != nil {
		return err
	}
	return c.cryptoki.Login(h, user, pin)
}

func (c faulty) FindObjectsInit(h pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) error {
	if err := c.f.before("FindObjectsInit"); err != nil {
		return err
	}
	return c.cryptoki.FindObjectsInit(h, tmpl)
}

func (c faulty) GenerateKeyPair(h pkcs11.SessionHandle, m []*pkcs11.Mechanism, pub, priv []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error) {
	if err := c.f.before("GenerateKeyPair"); err != nil {
		return 0, 0, err
	}
	ph, kh, err := c.cryptoki.GenerateKeyPair(h, m, pub, priv)
	if err == nil {
		err = c.f.afterCall("GenerateKeyPair")
	}
	return ph, kh, err
}

func (c faulty) SignInit(h pkcs11.SessionHandle, m []*pkcs11.Mechanism, key pkcs11.ObjectHandle) error {
	if err := c.f.before("SignInit"); err != nil {
		return err
	}
	return c.cryptoki.SignInit(h, m, key)
}

func (c faulty) Sign(h pkcs11.SessionHandle, msg []byte) ([]byte, error) {
	if err := c.f.before("Sign"); err != nil {
		return nil, err
	}
	sig, err := c.cryptoki.Sign(h, msg)
	c.f.mu.Lock()
	if c.f.corrupt && len(sig) > 0 {
		sig[len(sig)/2] ^= 0x40
	}
	c.f.mu.Unlock()
	return sig, err
}

func (c faulty) CreateObject(h pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	if err := c.f.before("CreateObject"); err != nil {
		return 0, err
	}
	o, err := c.cryptoki.CreateObject(h, tmpl)
	if err == nil {
		err = c.f.afterCall("CreateObject")
	}
	return o, err
}

func (c faulty) DestroyObject(h pkcs11.SessionHandle, o pkcs11.ObjectHandle) error {
	if err := c.f.before("DestroyObject"); err != nil {
		return err
	}
	return c.cryptoki.DestroyObject(h, o)
}
