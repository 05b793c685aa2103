package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv"
)

func openToken(t testing.TB, label string, mutate ...func(*Config)) *Token {
	t.Helper()
	mod, err := softhsm.Module()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Module: mod, TokenLabel: label, PIN: testPIN, PoolSize: 2, WaitTimeout: 2 * time.Second}
	for _, f := range mutate {
		f(&cfg)
	}
	tok, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open(%q): %v", label, err)
	}
	t.Cleanup(func() {
		if err := tok.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tok
}

func randomID(t testing.TB) []byte {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return id
}

func digestOf(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(msg)
		return d[:]
	default:
		d := sha256.Sum256(msg)
		return d[:]
	}
}

func TestSignVerify(t *testing.T) {
	tok := openToken(t, labelMain)
	ctx := context.Background()
	msg := []byte("署名用電子証明書")
	pss := func(h crypto.Hash, salt int) crypto.SignerOpts { return &rsa.PSSOptions{Hash: h, SaltLength: salt} }
	cases := []struct {
		alg  KeyAlgorithm
		opts []crypto.SignerOpts
	}{
		{RSA2048, []crypto.SignerOpts{crypto.SHA256, crypto.SHA384, crypto.SHA512,
			pss(crypto.SHA256, rsa.PSSSaltLengthEqualsHash), pss(crypto.SHA384, rsa.PSSSaltLengthAuto), pss(crypto.SHA512, 20)}},
		{RSA3072, []crypto.SignerOpts{crypto.SHA256, pss(crypto.SHA256, rsa.PSSSaltLengthAuto)}},
		{RSA4096, []crypto.SignerOpts{crypto.SHA512, pss(crypto.SHA512, rsa.PSSSaltLengthEqualsHash)}},
		{ECDSAP256, []crypto.SignerOpts{crypto.SHA256, crypto.SHA384}},
		{ECDSAP384, []crypto.SignerOpts{crypto.SHA384, crypto.SHA512}},
	}
	for _, tc := range cases {
		t.Run(string(tc.alg), func(t *testing.T) {
			s, err := tok.GenerateKey(ctx, KeyRef{Label: "sv-" + string(tc.alg), ID: randomID(t)}, tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := AlgorithmOf(s.Public()); err != nil || got != tc.alg {
				t.Fatalf("public key algorithm = %q, %v; want %q", got, err, tc.alg)
			}
			for _, opts := range tc.opts {
				name := opts.HashFunc().String()
				if _, ok := opts.(*rsa.PSSOptions); ok {
					name = "PSS-" + name
				}
				t.Run(name, func(t *testing.T) {
					digest := digestOf(opts.HashFunc(), msg)
					sig, err := s.Sign(rand.Reader, digest, opts)
					if err != nil {
						t.Fatal(err)
					}
					switch pub := s.Public().(type) {
					case *rsa.PublicKey:
						if p, ok := opts.(*rsa.PSSOptions); ok {
							// Verify with the exact salt length the signer
							// promises: the hash size for Auto and
							// EqualsHash, otherwise the value asked for.
							salt := p.SaltLength
							if salt == rsa.PSSSaltLengthAuto || salt == rsa.PSSSaltLengthEqualsHash {
								salt = p.Hash.Size()
							}
							err = rsa.VerifyPSS(pub, p.Hash, digest, sig, &rsa.PSSOptions{SaltLength: salt})
						} else {
							err = rsa.VerifyPKCS1v15(pub, opts.HashFunc(), digest, sig)
						}
					case *ecdsa.PublicKey:
						if !ecdsa.VerifyASN1(pub, digest, sig) {
							err = errors.New("ECDSA signature does not verify")
						}
					}
					if err != nil {
						t.Fatalf("verify: %v", err)
					}
					// A signature over another message must not verify.
					other := digestOf(opts.HashFunc(), []byte("改ざん"))
					if pub, ok := s.Public().(*rsa.PublicKey); ok {
						if _, pssOpts := opts.(*rsa.PSSOptions); !pssOpts && rsa.VerifyPKCS1v15(pub, opts.HashFunc(), other, sig) == nil {
							t.Fatal("signature verifies over a different digest")
						}
					}
				})
			}
			// The standard library signs a certificate through the Signer.
			self := selfSigned(t, s)
			if err := self.CheckSignatureFrom(self); err != nil {
				t.Fatalf("self-signed certificate does not verify: %v", err)
			}
		})
	}
}

func selfSigned(t testing.TB, s crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hsm test"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, err := testenv.SelfSigned(tmpl, s)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestSignRefusesBadInput(t *testing.T) {
	tok := openToken(t, labelMain)
	s, err := tok.GenerateKey(context.Background(), KeyRef{Label: "bad-input", ID: randomID(t)}, RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
		want   string
	}{
		{"no hash", make([]byte, 32), crypto.Hash(0), "without a hash"},
		{"SHA-1", make([]byte, 20), crypto.SHA1, "use SHA-256"},
		{"short digest", make([]byte, 31), crypto.SHA256, "digest is 31 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Sign(nil, tc.digest, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Sign = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestGeneratedKeysStayInTheToken(t *testing.T) {
	tok := openToken(t, labelMain)
	ctx := context.Background()
	ref := KeyRef{Label: "attrs", ID: randomID(t)}
	if _, err := tok.GenerateKey(ctx, ref, ECDSAP256); err != nil {
		t.Fatal(err)
	}
	keys, err := tok.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, k := range keys {
		if k.Label == ref.Label && string(k.ID) == string(ref.ID) {
			found = true
			if !k.Sensitive || k.Extractable || !k.Private || k.Algorithm != ECDSAP256 {
				t.Fatalf("key flags: sensitive=%v extractable=%v private=%v alg=%q; want sensitive, not extractable, private, ecdsa-p256",
					k.Sensitive, k.Extractable, k.Private, k.Algorithm)
			}
		}
	}
	if !found {
		t.Fatalf("generated key %s not listed among %d keys", ref, len(keys))
	}
	// Generating again under the same label and id is refused.
	if _, err := tok.GenerateKey(ctx, ref, ECDSAP256); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second GenerateKey = %v, want ErrKeyExists", err)
	}
}

func TestKeyLookup(t *testing.T) {
	tok := openToken(t, labelCerts)
	ctx := context.Background()
	ref := KeyRef{Label: "issuer", ID: randomID(t)}
	s, err := tok.GenerateKey(ctx, ref, RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, s)

	other, err := tok.GenerateKey(ctx, KeyRef{Label: "other", ID: randomID(t)}, RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	otherCert := selfSigned(t, other)

	// A second private key under the same label and id, made behind
	// GenerateKey's back, makes the look-up ambiguous.
	dup := KeyRef{Label: "dup", ID: randomID(t)}
	if _, err := tok.GenerateKey(ctx, dup, ECDSAP256); err != nil {
		t.Fatal(err)
	}
	second := KeyRef{Label: "dup", ID: randomID(t)}
	if _, err := tok.GenerateKey(ctx, second, ECDSAP256); err != nil {
		t.Fatal(err)
	}

	t.Run("found and matches its certificate", func(t *testing.T) {
		got, err := tok.SignerFor(ctx, ref, cert)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Public().(*rsa.PublicKey).Equal(cert.PublicKey) {
			t.Fatal("public key differs from the certificate's")
		}
	})
	t.Run("certificate of another key", func(t *testing.T) {
		_, err := tok.SignerFor(ctx, ref, otherCert)
		if !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("SignerFor = %v, want ErrKeyMismatch", err)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		_, err := tok.Signer(ctx, KeyRef{Label: "issuer", ID: []byte{9}})
		if !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), `label "issuer" id 09`) {
			t.Fatalf("Signer = %v, want ErrKeyNotFound naming the key", err)
		}
	})
	t.Run("label and id both required", func(t *testing.T) {
		for _, bad := range []KeyRef{{Label: "issuer"}, {ID: ref.ID}} {
			_, err := tok.Signer(ctx, bad)
			if err == nil || !strings.Contains(err.Error(), "a key needs both a label and an id") {
				t.Fatalf("Signer(%s) = %v, want an error saying both a label and an id are needed", bad, err)
			}
		}
	})
	t.Run("ambiguous", func(t *testing.T) {
		// Relabel the second key so that two private keys share label and id.
		err := tok.do(ctx, "relabel", func(s session) error {
			hs, err := findObjects(s, second, 3 /* CKO_PRIVATE_KEY */)
			if err != nil || len(hs) != 1 {
				return errors.Join(err, errors.New("key to relabel not found"))
			}
			return s.ctx.SetAttributeValue(s.h, hs[0], attrsID(dup.ID))
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tok.Signer(ctx, dup)
		if !errors.Is(err, ErrKeyAmbiguous) {
			t.Fatalf("Signer = %v, want ErrKeyAmbiguous", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	mod, err := softhsm.Module()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  Config
		is   error
		want string
	}{
		{"wrong PIN", Config{Module: mod, TokenLabel: labelPIN, PIN: "not-the-pin"}, ErrWrongPIN, "PIN is wrong"},
		// The error lists the tokens that do exist.
		{"missing token", Config{Module: mod, TokenLabel: labelUnknown, PIN: testPIN}, ErrTokenNotFound, `hsm: open token: no token with that label "` + labelUnknown + `"`},
		{"tokens seen", Config{Module: mod, TokenLabel: labelUnknown, PIN: testPIN}, ErrTokenNotFound, `"` + labelMain + `"`},
		{"two tokens with the label", Config{Module: mod, TokenLabel: labelDup, PIN: testPIN}, ErrTokenAmbiguous, `more than one token has that label "` + labelDup + `"`},
		{"missing module", Config{Module: "/nonexistent/libpkcs11.so", TokenLabel: labelMain, PIN: testPIN}, nil, "cannot load the PKCS#11 module /nonexistent/libpkcs11.so"},
		{"no PIN", Config{Module: mod, TokenLabel: labelMain}, nil, "PIN is empty"},
		{"no label", Config{Module: mod, PIN: testPIN}, nil, "token label is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Open(tc.cfg)
			if err == nil {
				tok.Close()
				t.Fatal("Open succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestPoolExhaustion(t *testing.T) {
	const wait = 150 * time.Millisecond
	tok := openToken(t, labelPool, func(c *Config) { c.PoolSize = 1; c.WaitTimeout = wait })
	ctx := context.Background()
	s, err := tok.GenerateKey(ctx, KeyRef{Label: "pool", ID: randomID(t)}, RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	digest := digestOf(crypto.SHA256, []byte("x"))

	// Hold the only session.
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- tok.do(ctx, "hold", func(session) error { close(held); <-release; return nil })
	}()
	<-held

	start := time.Now()
	_, err = s.Sign(nil, digest, crypto.SHA256)
	waited := time.Since(start)
	if !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("Sign with the pool exhausted = %v, want ErrPoolExhausted", err)
	}
	if !strings.Contains(err.Error(), `sign with key label "pool"`) || !strings.Contains(err.Error(), "all 1 sessions stayed in use for 150ms") {
		t.Errorf("error does not explain itself: %v", err)
	}
	if waited < wait {
		t.Errorf("gave up after %v, before the %v wait timeout", waited, wait)
	}

	// A cancelled context ends the wait early with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.SignContext(cctx, digest, crypto.SHA256); !errors.Is(err, context.Canceled) {
		t.Errorf("SignContext with a cancelled context = %v", err)
	}

	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(nil, digest, crypto.SHA256); err != nil {
		t.Fatalf("Sign after the session came back: %v", err)
	}
}

func TestConcurrentSigning(t *testing.T) {
	tok := openToken(t, labelMain, func(c *Config) { c.PoolSize = 3 })
	s, err := tok.GenerateKey(context.Background(), KeyRef{Label: "concurrent", ID: randomID(t)}, RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := s.Public().(*rsa.PublicKey)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				d := digestOf(crypto.SHA256, []byte{byte(w), byte(i)})
				sig, err := s.Sign(nil, d, crypto.SHA256)
				if err == nil {
					err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d, sig)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRecoversWhenTheHSMComesBack takes a network HSM away and brings it back:
// SoftHSM2 behind a real p11-kit server, used through p11-kit-client.so. The
// same Signer must fail clearly while the server is down and work again once
// it is back, without reopening anything.
func TestRecoversWhenTheHSMComesBack(t *testing.T) {
	client, err := softhsm.P11KitClientModule()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := softhsm.NewRemoteServer(testDir, labelRemote, filepath.Join(t.TempDir(), "run"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	t.Setenv("P11_KIT_SERVER_ADDRESS", srv.Address())
	t.Setenv("XDG_RUNTIME_DIR", filepath.Dir(srv.Socket))

	tok := openToken(t, labelRemote, func(c *Config) {
		c.Module = client
		c.RetryInterval = 50 * time.Millisecond
	})
	ctx := context.Background()
	s, err := tok.GenerateKey(ctx, KeyRef{Label: "remote", ID: randomID(t)}, RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := s.Public().(*rsa.PublicKey)
	sign := func() error {
		d := digestOf(crypto.SHA256, []byte(time.Now().String()))
		sig, err := s.Sign(nil, d, crypto.SHA256)
		if err != nil {
			return err
		}
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d, sig)
	}
	if err := sign(); err != nil {
		t.Fatalf("sign before the outage: %v", err)
	}

	for round := 1; round <= 2; round++ {
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		err := sign()
		t.Logf("round %d, HSM down: %v", round, err)
		if !errors.Is(err, ErrTokenUnavailable) {
			t.Fatalf("round %d: sign with the HSM down = %v, want ErrTokenUnavailable", round, err)
		}
		if !strings.Contains(err.Error(), "unavailable") {
			t.Errorf("round %d: error does not say the HSM is unavailable: %v", round, err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		// The first attempts after the server is back may still meet the
		// retry interval; the signer must recover on its own within a few.
		back := time.Now()
		deadline := back.Add(10 * time.Second)
		for err = sign(); err != nil && time.Now().Before(deadline); err = sign() {
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("round %d: recovered %v after the server restarted", round, time.Since(back))
		if err != nil {
			t.Fatalf("round %d: signer did not recover after the HSM came back: %v", round, err)
		}
	}
}

func TestPINSource(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeMode := func(name, content string, mode os.FileMode) string {
		p := write(name, content)
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("SHOMEI_TEST_PIN", "from-env")
	cases := []struct {
		name    string
		src     PINSource
		want    string
		wantErr string
	}{
		{"file, first line", PINSource{File: write("pin", "s3cret\nignored\n")}, "s3cret", ""},
		{"file with CRLF", PINSource{File: write("pin-crlf", "s3cret\r\n")}, "s3cret", ""},
		{"env", PINSource{Env: "SHOMEI_TEST_PIN"}, "from-env", ""},
		{"empty file", PINSource{File: write("empty", "\n")}, "", "is empty"},
		{"file others may read", PINSource{File: writeMode("pin-0644", "s3cret\n", 0o644)}, "", "chmod 600"},
		{"missing file", PINSource{File: filepath.Join(dir, "nope")}, "", "reading the PIN file"},
		{"unset env", PINSource{Env: "SHOMEI_TEST_PIN_UNSET"}, "", "SHOMEI_TEST_PIN_UNSET is not set"},
		{"both", PINSource{File: "x", Env: "y"}, "", "not both"},
		{"neither", PINSource{}, "", "no PIN source"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.src.Read()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Read = %q, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Read = %q, %v; want %q", got, err, tc.want)
			}
			if _, still := os.LookupEnv(tc.src.Env); tc.src.Env != "" && still {
				t.Errorf("the PIN is still in the environment variable %s after Read", tc.src.Env)
			}
		})
	}
}
