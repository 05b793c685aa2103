package ocsp_test

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ocsp"
)

// memStore is an in-memory store of statuses and pre-signed responses
// that keeps the ResponseStore and PresignStore contracts the way the
// CA's store does (ca/store presigned.go): a status change drops the
// serial's response and queues it at once; a response is stored only
// while its status is the recorded one.
type memStore struct {
	mu        sync.Mutex
	certs     map[string]*memCert
	responses map[string]*storev1.PresignedResponse
	queue     map[string]bool // due (8 octets, Unix seconds) ‖ serial
	revision  uint64
	// reads counts PresignedResponse calls.
	reads int
}

type memCert struct {
	issuer   *x509.Certificate
	status   ocsp.Status
	notAfter time.Time
}

var (
	_ ocsp.PresignStore = (*memStore)(nil)
	_ ocsp.Source       = (*memStore)(nil)
)

func newMemStore() *memStore {
	return &memStore{certs: map[string]*memCert{}, responses: map[string]*storev1.PresignedResponse{}, queue: map[string]bool{}}
}

func queueKey(due time.Time, serial []byte) string {
	var d uint64
	if !due.IsZero() {
		d = uint64(due.Unix())
	}
	return string(binary.BigEndian.AppendUint64(nil, d)) + string(serial)
}

// change drops serial's response and its refresh, and queues it at once,
// as a status change does. mu is held.
func (s *memStore) change(serial []byte) {
	s.revision++
	if old := s.responses[string(serial)]; old != nil {
		delete(s.queue, queueKey(old.RefreshAt.AsTime(), serial))
		delete(s.responses, string(serial))
	}
	s.queue[queueKey(time.Time{}, serial)] = true
}

// issue records a good certificate of issuer.
func (s *memStore) issue(issuer *x509.Certificate, serial *big.Int, notAfter time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs[string(serial.Bytes())] = &memCert{issuer: issuer, status: ocsp.Status{Status: ocsp.Good}, notAfter: notAfter}
	s.change(serial.Bytes())
}

// revoke records serial's revocation.
func (s *memStore) revoke(serial *big.Int, at time.Time, reason int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.certs[string(serial.Bytes())]
	c.status = ocsp.Status{Status: ocsp.Revoked, RevokedAt: at.Truncate(time.Second), Reason: reason}
	s.change(serial.Bytes())
}

func (s *memStore) stored(serial *big.Int) *storev1.PresignedResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.responses[string(serial.Bytes())]
}

func (s *memStore) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Status implements ocsp.Source: what the store records.
func (s *memStore) Status(_ context.Context, is *ocsp.Issuer, serial *big.Int) (ocsp.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.certs[string(serial.Bytes())]
	if c == nil || !c.issuer.Equal(is.Certificate) {
		return ocsp.Status{Status: ocsp.Unknown}, nil
	}
	return c.status, nil
}

func (s *memStore) PresignedResponse(serial []byte) (*storev1.PresignedResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if r := s.responses[string(serial)]; r != nil {
		return proto.CloneOf(r), nil
	}
	return nil, nil
}

func (s *memStore) sortedKeys() []string {
	keys := make([]string, 0, len(s.queue))
	for k := range s.queue {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (s *memStore) PresignDue(now time.Time, limit int) ([]ocsp.PresignTask, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ocsp.PresignTask
	for _, k := range s.sortedKeys() {
		if len(out) == limit || binary.BigEndian.Uint64([]byte(k[:8])) > uint64(now.Unix()) {
			break
		}
		serial := []byte(k[8:])
		t := ocsp.PresignTask{Key: []byte(k), Serial: new(big.Int).SetBytes(serial), Revision: s.revision}
		c := s.certs[string(serial)]
		if c == nil || now.After(c.notAfter) {
			t.Drop = true
		} else {
			t.Issuer, t.Status = c.issuer, c.status
		}
		out = append(out, t)
	}
	return out, nil
}

func (s *memStore) SavePresigned(done []ocsp.PresignDone) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := 0
	for _, d := range done {
		serial := string(d.Serial)
		switch {
		case !d.Retry.IsZero():
			delete(s.queue, string(d.Key))
			s.queue[queueKey(d.Retry, d.Serial)] = true
		case d.Response == nil:
			delete(s.queue, string(d.Key))
			if old := s.responses[serial]; old != nil {
				delete(s.queue, queueKey(old.RefreshAt.AsTime(), d.Serial))
				delete(s.responses, serial)
			}
		default:
			c := s.certs[serial]
			if c == nil || (c.status.Status == ocsp.Revoked) != d.Response.Revoked {
				continue // changed since: its change queued it again
			}
			if old := s.responses[serial]; old != nil {
				delete(s.queue, queueKey(old.RefreshAt.AsTime(), d.Serial))
			}
			delete(s.queue, string(d.Key))
			s.responses[serial] = proto.CloneOf(d.Response)
			s.queue[queueKey(d.Response.RefreshAt.AsTime(), d.Serial)] = true
			stored++
		}
	}
	return stored, nil
}

func (s *memStore) PresignBackfill(now time.Time, limit int) (bool, error) {
	return true, nil
}

func (s *memStore) PresignStats(now time.Time, limit int) (int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	var oldest time.Time
	for _, k := range s.sortedKeys() {
		due := binary.BigEndian.Uint64([]byte(k[:8]))
		if due <= uint64(now.Unix()) && n < limit {
			n++
		}
		if r := s.responses[k[8:]]; r != nil && due != 0 && (oldest.IsZero() || r.ThisUpdate.AsTime().Before(oldest)) {
			oldest = r.ThisUpdate.AsTime()
		}
	}
	return n, oldest, nil
}

// presignEnv is a responder answering from a memStore, and its pre-signer.
type presignEnv struct {
	*env
	store *memStore
	p     *ocsp.Presigner
	cfg   ocsp.Config
}

// newPresignEnv serves gen1 and gen2 from a memStore holding gen1's good
// and revoked certificates and gen2's good one, with a pre-signer.
func newPresignEnv(t testing.TB, mod func(*ocsp.Config), pmod func(*ocsp.PresignConfig)) *presignEnv {
	t.Helper()
	st := newMemStore()
	var cfg ocsp.Config
	e := newEnv(t, func(c *ocsp.Config) {
		c.Source, c.Presigned = st, st
		if mod != nil {
			mod(c)
		}
		cfg = *c
	})
	notAfter := e.clock.Now().Add(365 * 24 * time.Hour)
	st.issue(e.f.gen1.cert, serialGood, notAfter)
	st.issue(e.f.gen1.cert, serialRevoked, notAfter)
	st.revoke(serialRevoked, revokedAt, 1)
	st.issue(e.f.gen2.cert, serialGen2Good, notAfter)
	pe := &presignEnv{env: e, store: st, cfg: cfg}
	pe.p = pe.presigner(t, e.r, pmod)
	return pe
}

// presigner makes a pre-signer of r over the env's store and clock.
func (e *presignEnv) presigner(t testing.TB, r *ocsp.Responder, pmod func(*ocsp.PresignConfig)) *ocsp.Presigner {
	t.Helper()
	pc := ocsp.PresignConfig{Responder: r, Store: e.store, Budget: 1000}
	if pmod != nil {
		pmod(&pc)
	}
	p, err := ocsp.NewPresigner(pc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// step runs one Step and fails the test on an error.
func step(t testing.TB, p *ocsp.Presigner) ocsp.PresignStep {
	t.Helper()
	res, err := p.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// restart is a new Responder over the same issuers and store, with fresh
// counting signers: what a restarted process has.
func (e *presignEnv) restart(t testing.TB) (*ocsp.Responder, *countingSigner) {
	t.Helper()
	cfg := e.cfg
	var signer1 *countingSigner
	cfg.Issuers, cfg.Metrics = nil, nil
	for _, is := range []*ocsp.Issuer{e.gen1, e.gen2} {
		s := &countingSigner{Signer: is.Signer.(*countingSigner).Signer}
		if is == e.gen1 {
			signer1 = s
		}
		cfg.Issuers = append(cfg.Issuers, &ocsp.Issuer{Certificate: is.Certificate, Responder: is.Responder, Signer: s})
	}
	r, err := ocsp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, signer1
}
