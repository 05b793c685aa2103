package hsm

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// epochOf is the module epoch tok's module is in.
func epochOf(tok *Token) uint64 {
	_, epoch, _ := tok.mod.current()
	return epoch
}

// forceReinit re-initialises tok's module, as a Token that saw the device
// fail would, regardless of the backoff.
func forceReinit(t testing.TB, tok *Token) {
	t.Helper()
	if !tok.mod.reinitialize(epochOf(tok), 0) {
		t.Fatal("the module was not re-initialised")
	}
}

func sign(s *Signer) error {
	_, err := s.Sign(nil, digestOf(crypto.SHA256, []byte(time.Now().String())), crypto.SHA256)
	return err
}

// TestGradedRecovery shows a Token each kind of failure once and checks the
// response: a new session, a new login, a reconnect, or a re-initialisation
// of the module — or none, for failures that say nothing about the
// connection.
func TestGradedRecovery(t *testing.T) {
	f := newFaults()
	tok := openFaulty(t, labelFaults, f, func(c *Config) { c.RetryInterval = time.Millisecond })
	ctx := context.Background()
	cases := []struct {
		code                uint
		hide                bool // the reconnect does not find the token the first time
		retried, relogin    bool
		reinit, unavailable bool
	}{
		{code: pkcs11.CKR_SESSION_HANDLE_INVALID, retried: true},
		{code: pkcs11.CKR_SESSION_CLOSED, retried: true},
		{code: pkcs11.CKR_OPERATION_ACTIVE, retried: true},
		{code: pkcs11.CKR_USER_NOT_LOGGED_IN, retried: true, relogin: true},
		{code: pkcs11.CKR_TOKEN_NOT_PRESENT, retried: true, relogin: true},
		{code: pkcs11.CKR_TOKEN_NOT_RECOGNIZED, retried: true, relogin: true},
		{code: pkcs11.CKR_SLOT_ID_INVALID, retried: true, relogin: true},
		{code: pkcs11.CKR_TOKEN_NOT_PRESENT, hide: true, retried: true, relogin: true, reinit: true},
		{code: pkcs11.CKR_DEVICE_ERROR, retried: true, relogin: true, reinit: true},
		{code: pkcs11.CKR_DEVICE_REMOVED, retried: true, relogin: true, reinit: true},
		{code: pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, retried: true, relogin: true, reinit: true},
		{code: pkcs11.CKR_FUNCTION_FAILED},
		{code: pkcs11.CKR_GENERAL_ERROR},
		{code: pkcs11.CKR_DEVICE_MEMORY},
		{code: pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED},
	}
	for _, tc := range cases {
		name := pkcs11.Error(tc.code).Error()
		name = name[strings.LastIndex(name, " ")+1:]
		if tc.hide {
			name += " and still gone after a reconnect"
		}
		t.Run(name, func(t *testing.T) {
			time.Sleep(5 * time.Millisecond) // past the backoff of an earlier case
			if tc.hide {
				f.set(func(f *faults) { f.hidden = 1 })
			}
			epoch, logins := epochOf(tok), f.count("Login")
			calls := 0
			err := tok.do(ctx, "test", func(session) error {
				calls++
				if calls == 1 {
					return ckr(tc.code)
				}
				return nil
			})
			if want := map[bool]int{false: 1, true: 2}[tc.retried]; calls != want {
				t.Errorf("the operation ran %d times, want %d", calls, want)
			}
			if got := epochOf(tok) != epoch; got != tc.reinit {
				t.Errorf("module re-initialised: %v, want %v", got, tc.reinit)
			}
			if got := f.count("Login") > logins; got != tc.relogin {
				t.Errorf("logged in again: %v, want %v", got, tc.relogin)
			}
			switch {
			case tc.retried && err != nil:
				t.Errorf("do = %v after a successful retry", err)
			case !tc.retried && (err == nil || !isCode(err, tc.code)):
				t.Errorf("do = %v, want the error as it is", err)
			case !tc.retried && errors.Is(err, ErrTokenUnavailable):
				t.Errorf("do = %v: %s does not make the token unavailable", err, name)
			}
		})
	}

	t.Run("session-level failure again on the new session", func(t *testing.T) {
		epoch, calls := epochOf(tok), 0
		err := tok.do(ctx, "test", func(session) error { calls++; return ckr(pkcs11.CKR_SESSION_HANDLE_INVALID) })
		if calls != 2 || !errors.Is(err, ErrTokenUnavailable) || epochOf(tok) != epoch {
			t.Errorf("ran %d times, error %v, epoch %d→%d; want 2 runs, ErrTokenUnavailable, no re-initialisation",
				calls, err, epoch, epochOf(tok))
		}
	})
}

// TestFailuresDoNotLeakSessions: a session that saw an error is closed, not
// just forgotten, and an operation is not retried when no recovery happened
// (here: the module's backoff refuses a second re-initialisation).
func TestFailuresDoNotLeakSessions(t *testing.T) {
	f := newFaults()
	tok := openFaulty(t, labelFaults, f, func(c *Config) { c.PoolSize = 2; c.RetryInterval = time.Hour })
	ctx := context.Background()
	open := func() int { return f.count("OpenSession") - f.count("CloseSession") }

	t.Run("reported as is", func(t *testing.T) {
		before, calls := open(), 0
		var err error
		for range 100 {
			err = tok.do(ctx, "flaky", func(session) error { calls++; return ckr(pkcs11.CKR_FUNCTION_FAILED) })
		}
		if n := open() - before; n > tok.PoolSize() {
			t.Errorf("%d more sessions open after 100 failures, pool size %d", n, tok.PoolSize())
		}
		if calls != 100 {
			t.Errorf("100 operations ran %d times", calls)
		}
		if errors.Is(err, ErrTokenUnavailable) || !strings.Contains(err.Error(), `hsm: token "hsm-faults": flaky: pkcs11: 0x6: CKR_FUNCTION_FAILED`) {
			t.Errorf("error = %v, want CKR_FUNCTION_FAILED as it is", err)
		}
	})

	t.Run("re-initialisation refused by the backoff", func(t *testing.T) {
		// The first device error re-initialises the module; after that the
		// one-hour backoff refuses, and nothing is retried.
		epoch, first := epochOf(tok), true
		if err := tok.do(ctx, "first", func(session) error {
			if first {
				first = false
				return ckr(pkcs11.CKR_DEVICE_ERROR)
			}
			return nil
		}); err != nil || epochOf(tok) == epoch {
			t.Fatalf("first device error: %v, epoch %d→%d; want a re-initialisation and a successful retry", err, epoch, epochOf(tok))
		}
		epoch, before, calls := epochOf(tok), open(), 0
		for range 50 {
			err := tok.do(ctx, "device", func(session) error { calls++; return ckr(pkcs11.CKR_DEVICE_ERROR) })
			if !errors.Is(err, ErrTokenUnavailable) {
				t.Fatalf("do = %v, want ErrTokenUnavailable", err)
			}
		}
		if calls != 50 || epochOf(tok) != epoch {
			t.Errorf("50 operations ran %d times, module epoch %d→%d; want no retries and no re-initialisation", calls, epoch, epochOf(tok))
		}
		if n := open() - before; n > tok.PoolSize() {
			t.Errorf("%d more sessions open after 50 failures, pool size %d", n, tok.PoolSize())
		}
	})
}

// TestHSMOutOfSessions: CKR_SESSION_COUNT is reported in words, as a full
// pool, and does not re-initialise anything.
func TestHSMOutOfSessions(t *testing.T) {
	f := newFaults()
	tok := openFaulty(t, labelFaults, f, func(c *Config) { c.PoolSize = 2 })
	ctx := context.Background()
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- tok.do(ctx, "hold", func(session) error { close(held); <-release; return nil }) }()
	<-held
	f.failAlways("OpenSession", ckr(pkcs11.CKR_SESSION_COUNT))
	epoch, ran := epochOf(tok), false
	err := tok.do(ctx, "list keys", func(session) error { ran = true; return nil })
	f.failAlways("OpenSession", nil)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, ErrPoolExhausted) || !strings.Contains(err.Error(), "the HSM refuses to open another session") || ran {
		t.Fatalf("do = %v (ran: %v), want ErrPoolExhausted saying the HSM refuses another session", err, ran)
	}
	if epochOf(tok) != epoch {
		t.Error("CKR_SESSION_COUNT re-initialised the module")
	}
}

// TestReinitBackoff: a Token whose token is gone for good re-initialises the
// module less and less often, and a healthy Token on the same module, whose
// reconnections do not count, keeps working.
func TestReinitBackoff(t *testing.T) {
	f := newFaults()
	a := openFaulty(t, labelFaults, f, func(c *Config) { c.RetryInterval = 10 * time.Millisecond })
	b := openToken(t, labelOther)
	ctx := context.Background()
	sa, err := a.GenerateKey(ctx, KeyRef{Label: "backoff-a", ID: randomID(t)}, ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.GenerateKey(ctx, KeyRef{Label: "backoff-b", ID: randomID(t)}, ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	// A's token goes away: A's calls say so, and A no longer finds it.
	f.failAlways("SignInit", ckr(pkcs11.CKR_TOKEN_NOT_PRESENT))
	f.set(func(f *faults) { f.hidden = -1 })

	epoch := epochOf(a)
	stop := time.Now().Add(1200 * time.Millisecond)
	var wg sync.WaitGroup
	var aErrs, bErrs atomic.Int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		for time.Now().Before(stop) {
			if err := sign(sa); err != nil {
				aErrs.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for time.Now().Before(stop) {
			if err := sign(sb); err != nil {
				bErrs.Add(1)
				t.Errorf("healthy Token: %v", err)
			}
		}
	}()
	wg.Wait()
	reinits := epochOf(a) - epoch
	t.Logf("1.2s with A's token gone (retry interval 10ms): %d failures on A, %d module re-initialisations, %d failures on B",
		aErrs.Load(), reinits, bErrs.Load())
	// 10ms, 20ms, 40ms, … apart: 7 fit in 1.2s; without a backoff, one
	// per retry interval would.
	if reinits == 0 || reinits > 9 {
		t.Errorf("%d module re-initialisations in 1.2s, want between 1 and 9", reinits)
	}

	// A's token comes back: A recovers within the backoff, and its
	// reconnection resets it.
	f.failAlways("SignInit", nil)
	f.set(func(f *faults) { f.hidden = 0 })
	deadline := time.Now().Add(2 * maxReinitBackoff)
	for err = sign(sa); err != nil && time.Now().Before(deadline); err = sign(sa) {
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("A did not recover: %v", err)
	}
	a.mod.mu.Lock()
	failures := a.mod.failures
	a.mod.mu.Unlock()
	if failures != 0 {
		t.Errorf("after A reconnected the module counts %d failed re-initialisations, want 0", failures)
	}
}

// TestOldFailureKeepsNewConnection: a failure seen in an earlier epoch (an
// operation that was slow to fail) must not drop the healthy connection
// made since.
func TestOldFailureKeepsNewConnection(t *testing.T) {
	f := newFaults()
	tok := openFaulty(t, labelFaults, f)
	s, err := tok.GenerateKey(context.Background(), KeyRef{Label: "old-epoch", ID: randomID(t)}, ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	old := place{epoch: epochOf(tok), gen: tok.gen}
	forceReinit(t, tok)
	if err := sign(s); err != nil { // reconnects in the new epoch
		t.Fatal(err)
	}
	logins, epoch := f.count("Login"), epochOf(tok)
	for _, code := range []uint{pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_DEVICE_ERROR} {
		if _, retry := tok.recover(old, ckr(code)); !retry {
			t.Errorf("%v from the old epoch: no retry, though the module has moved on", ckr(code))
		}
	}
	tok.mu.Lock()
	connected, idle := tok.connected, len(tok.idle)
	tok.mu.Unlock()
	if !connected || idle == 0 || epochOf(tok) != epoch {
		t.Fatalf("after old failures: connected %v, %d idle sessions, epoch %d→%d; want the new connection untouched",
			connected, idle, epoch, epochOf(tok))
	}
	if err := sign(s); err != nil {
		t.Fatal(err)
	}
	if n := f.count("Login") - logins; n != 0 {
		t.Errorf("logged in %d more times", n)
	}
}

// TestUnavailableTokenFailsFast: while the token cannot be reached, an
// operation within RetryInterval of the last attempt fails at once with
// ErrTokenUnavailable and the reason, without looking for the token again.
func TestUnavailableTokenFailsFast(t *testing.T) {
	f := newFaults()
	tok := openFaulty(t, labelFaults, f, func(c *Config) { c.RetryInterval = time.Hour })
	s, err := tok.GenerateKey(context.Background(), KeyRef{Label: "fail-fast", ID: randomID(t)}, ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	f.failAlways("SignInit", ckr(pkcs11.CKR_TOKEN_NOT_PRESENT))
	f.set(func(f *faults) { f.hidden = -1 })
	if err := sign(s); !errors.Is(err, ErrTokenUnavailable) {
		t.Fatalf("sign with the token gone = %v, want ErrTokenUnavailable", err)
	}
	lookups := f.count("GetSlotList")
	start := time.Now()
	for range 20 {
		err = sign(s)
		if !errors.Is(err, ErrTokenUnavailable) || !errors.Is(err, ErrTokenNotFound) {
			t.Fatalf("sign = %v, want ErrTokenUnavailable wrapping ErrTokenNotFound", err)
		}
	}
	t.Logf("20 signatures failed in %v: %v", time.Since(start), err)
	if n := f.count("GetSlotList") - lookups; n != 0 {
		t.Errorf("20 operations within the retry interval looked for the token %d times, want 0", n)
	}
	if !strings.Contains(err.Error(), "the last attempt to reach it") {
		t.Errorf("error does not say it repeats the last attempt's failure: %v", err)
	}
}

// TestReloginAfterLogout: when the token logs out behind a Token's back (it
// does when the process's last session on it closes), the Token logs in
// again instead of reporting its keys missing.
func TestReloginAfterLogout(t *testing.T) {
	f := newFaults()
	tok := openFaulty(t, labelFaults, f)
	ctx := context.Background()
	ref := KeyRef{Label: "relogin", ID: randomID(t)}
	s, err := tok.GenerateKey(ctx, ref, ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	logout := func() {
		t.Helper()
		tok.mod.opMu.RLock()
		defer tok.mod.opMu.RUnlock()
		tok.mu.Lock()
		defer tok.mu.Unlock()
		if err := tok.mod.ctx.Logout(tok.idle[0]); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		op   func() error
	}{
		{"find the key", func() error { _, err := tok.Signer(ctx, ref); return err }},
		{"sign with a cached handle", func() error { return sign(s) }},
		{"list the keys", func() error {
			keys, err := tok.Keys(ctx)
			if err == nil && len(keys) == 0 {
				err = errors.New("no keys listed")
			}
			return err
		}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			logout()
			logins := f.count("Login")
			if err := step.op(); err != nil {
				t.Fatalf("after a logout: %v", err)
			}
			if f.count("Login") == logins {
				t.Error("did not log in again")
			}
		})
	}
}
