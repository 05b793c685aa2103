package hsm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/shomei-pki/shomei/internal/softhsm"
)

// softhsmPaths returns the SoftHSM2 library's real path and a symbolic link
// to it.
func softhsmPaths(t *testing.T) (real, link string) {
	t.Helper()
	mod, err := softhsm.Module()
	if err != nil {
		t.Fatal(err)
	}
	real, err = filepath.EvalSymlinks(mod)
	if err != nil {
		t.Fatal(err)
	}
	link = filepath.Join(t.TempDir(), "libsofthsm2.so")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	return real, link
}

// noModuleLoaded fails the test if a Token left from another test holds the
// library: these tests need to see it loaded and unloaded.
func noModuleLoaded(t *testing.T, path string) {
	t.Helper()
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if m := modules[canonicalPath(path)]; m != nil {
		t.Fatalf("precondition: module %s still loaded, by %d Tokens", path, m.refs)
	}
}

// TestOneModulePerLibrary: two spellings of one library share a module.
// With one module each, the second C_Initialize found the library
// initialised, and closing either Token finalised it under the other, whose
// next call crashed the process inside SoftHSM2.
func TestOneModulePerLibrary(t *testing.T) {
	real, link := softhsmPaths(t)
	b := openToken(t, labelOther, func(c *Config) { c.Module = real; c.PoolSize = 4 })
	sb, err := b.GenerateKey(context.Background(), KeyRef{Label: "two-paths", ID: randomID(t)}, ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	stop := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	var signed atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := sign(sb); err != nil {
					t.Errorf("sign while another Token opens and closes: %v", err)
					return
				}
				signed.Add(1)
			}
		}()
	}
	opened := 0
	for time.Now().Before(stop) {
		a, err := Open(Config{Module: link, TokenLabel: labelMain, PIN: testPIN})
		if err != nil {
			t.Error(err)
			break
		}
		if a.mod != b.mod {
			t.Error("a symbolic link to the library got a module of its own")
		}
		if err := a.Close(); err != nil {
			t.Error(err)
		}
		opened++
	}
	wg.Wait()
	t.Logf("opened and closed a Token through a link %d times while signing %d times", opened, signed.Load())
}

// TestLibraryOwnedElsewhere: when other code in the process initialised the
// library first, closing the last Token must not finalise it under that code.
func TestLibraryOwnedElsewhere(t *testing.T) {
	real, _ := softhsmPaths(t)
	noModuleLoaded(t, real)
	other := pkcs11.New(real)
	if other == nil {
		t.Fatal("cannot load", real)
	}
	defer other.Destroy()
	if err := other.Initialize(); err != nil {
		t.Fatalf("precondition: the other code initialises the library: %v", err)
	}
	defer other.Finalize()

	tok, err := Open(Config{Module: real, TokenLabel: labelMain, PIN: testPIN})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Keys(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tok.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.GetSlotList(true); err != nil {
		t.Fatalf("the other code's library after the last Token closed: %v", err)
	}
}

// TestCloseLeavesOthersSessions: after a re-initialisation the library
// numbers sessions from the start again, so a Token's idle sessions from
// before name other Tokens' live sessions; closing them logged the others
// out.
func TestCloseLeavesOthersSessions(t *testing.T) {
	mod, err := softhsm.Module()
	if err != nil {
		t.Fatal(err)
	}
	noModuleLoaded(t, mod)
	a := openToken(t, labelMain)
	f := newFaults()
	b := openFaulty(t, labelOther, f, func(c *Config) { c.PoolSize = 1 })
	sb, err := b.GenerateKey(context.Background(), KeyRef{Label: "neighbour", ID: randomID(t)}, ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	forceReinit(t, b)
	if err := sign(sb); err != nil { // b reconnects in the new epoch
		t.Fatal(err)
	}
	if !slices.Equal(a.idle, b.idle) {
		t.Fatalf("precondition: a's stale session handles %v should name b's live ones %v", a.idle, b.idle)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b.mod.opMu.RLock()
	err = loggedIn(session{ctx: b.mod.ctx, h: b.idle[0]})
	b.mod.opMu.RUnlock()
	if err != nil {
		t.Fatalf("b's session after a closed: %v", err)
	}
	logins, opened := f.count("Login"), f.count("OpenSession")
	if err := sign(sb); err != nil {
		t.Fatal(err)
	}
	if f.count("Login") != logins || f.count("OpenSession") != opened {
		t.Error("b needed a new session or login after a closed")
	}
}

// TestCloseOneOfTwo: two Tokens on one token; closing one leaves the other
// logged in and working.
func TestCloseOneOfTwo(t *testing.T) {
	f := newFaults()
	a := openFaulty(t, labelShared, f)
	b, err := Open(Config{Module: a.cfg.Module, TokenLabel: labelShared, PIN: testPIN})
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.GenerateKey(context.Background(), KeyRef{Label: "one-of-two", ID: randomID(t)}, RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	logins := f.count("Login")
	if err := sign(s); err != nil {
		t.Fatal(err)
	}
	if f.count("Login") != logins {
		t.Error("closing one Token logged the other out")
	}
}

// TestCloseDoesNotWaitForOthers: closing a Token while another Token on the
// same module is in the middle of a long call returns at once; only the last
// Token, which finalises the module, waits for calls in flight.
func TestCloseDoesNotWaitForOthers(t *testing.T) {
	a := openToken(t, labelMain)
	b, err := Open(Config{Module: a.cfg.Module, TokenLabel: labelOther, PIN: testPIN})
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.do(context.Background(), "slow call", func(session) error { close(held); <-release; return nil })
	}()
	<-held
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	var closeErr error
	select {
	case closeErr = <-closed:
	case <-time.After(time.Second):
		t.Error("Close waited for another Token's call")
		close(release)
		closeErr = <-closed
	}
	if closeErr != nil {
		t.Error(closeErr)
	}
	select {
	case <-release:
	default:
		close(release)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestClosedToken: everything fails with ErrClosed after Close, and Close
// may be called again.
func TestClosedToken(t *testing.T) {
	mod, err := softhsm.Module()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Open(Config{Module: mod, TokenLabel: labelMain, PIN: testPIN})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ref := KeyRef{Label: "closed", ID: randomID(t)}
	s, err := tok.GenerateKey(ctx, ref, ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Close(); err != nil {
		t.Fatal(err)
	}
	ops := map[string]func() error{
		"Sign":   func() error { return sign(s) },
		"Signer": func() error { _, err := tok.Signer(ctx, ref); return err },
		"Keys":   func() error { _, err := tok.Keys(ctx); return err },
		"GenerateKey": func() error {
			_, err := tok.GenerateKey(ctx, KeyRef{Label: "closed", ID: randomID(t)}, ECDSAP256)
			return err
		},
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if err := tok.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestTwoTokensAcrossReinit: two Tokens sign concurrently on one module while
// it is re-initialised under them; object handles are cached per connection,
// so no signature is made with a handle from before.
func TestTwoTokensAcrossReinit(t *testing.T) {
	a := openToken(t, labelMain, func(c *Config) { c.PoolSize = 2 })
	b := openToken(t, labelOther, func(c *Config) { c.PoolSize = 2 })
	ctx := context.Background()
	var signers []*Signer
	for _, tok := range []*Token{a, b} {
		for _, alg := range []KeyAlgorithm{ECDSAP256, RSA2048} {
			s, err := tok.GenerateKey(ctx, KeyRef{Label: "across-" + string(alg), ID: randomID(t)}, alg)
			if err != nil {
				t.Fatal(err)
			}
			signers = append(signers, s)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var signed atomic.Int64
	for _, s := range signers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := sign(s); err != nil {
					t.Errorf("%s: %v", s.Ref(), err)
					return
				}
				signed.Add(1)
			}
		}()
	}
	const reinits = 10
	for range reinits {
		time.Sleep(20 * time.Millisecond)
		forceReinit(t, a)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d signatures across %d re-initialisations", signed.Load(), reinits)
}
