package propagation_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/open"
	"github.com/shomei-pki/shomei/propagation"
)

const partition = "sign-g1-13221"

var jst = time.FixedZone("JST", 9*60*60)

// t0 is when the test's certificates are issued and revoked.
var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, jst)

// recordingCache is the OCSP cache: it records what it is told to drop.
type recordingCache struct {
	mu      sync.Mutex
	dropped []*big.Int
}

func (c *recordingCache) Invalidate(serial *big.Int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropped = append(c.dropped, serial)
}

func (c *recordingCache) has(serial []byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.dropped {
		if s.Cmp(new(big.Int).SetBytes(serial)) == 0 {
			n++
		}
	}
	return n
}

// countingWaker is the replication stream: it counts its wake-ups.
type countingWaker struct{ n atomic.Int64 }

func (w *countingWaker) Notify() { w.n.Add(1) }

// TestPropagation: a revocation recorded in the real store, notified
// before Run even starts, reaches the OCSP cache, the replication stream
// and its partition's CRL, and is measured in the freshness metric
// (R-R4). The polls are an hour, so only the notification can do it.
// What was revoked before New is the past: it is not dropped again.
func TestPropagation(t *testing.T) {
	st := open.Store(t)
	old := issue(t, st, 1)
	revoke(t, st, old)
	cert := issue(t, st, 2)
	issuer := newIssuer(t)

	notifier := propagation.NewNotifier()
	cache, replication := &recordingCache{}, &countingWaker{}
	reg := prometheus.NewRegistry()
	var published atomic.Int64
	p, err := propagation.New(propagation.Config{
		Notifier: notifier, Changes: st, Cache: cache, Replication: replication,
		CRL: crl.PublisherConfig{Source: st, Issuers: issuer.get, Poll: time.Hour,
			Published: func(string, uint64, time.Time) { published.Add(1) }},
		Poll:    time.Hour,
		Metrics: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	revoke(t, st, cert)
	notifier.Notify() // the CA's OnStatusChange, before Run starts

	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { p.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()

	waitFor(t, "the revocation to reach the cache, the replicas and the CRL", func() bool {
		return cache.has(cert) == 1 && replication.n.Load() >= 1 && visible(t, reg)["crl"] == 1
	})
	if got := visible(t, reg); got["ocsp"] != 1 || got["crl"] != 1 {
		t.Errorf("shomei_revocation_visible_seconds counts %v, want ocsp 1 and crl 1", got)
	}
	if cache.has(old) != 0 {
		t.Error("a revocation recorded before New was dropped from the cache again")
	}
	if published.Load() == 0 {
		t.Error("the CRL publisher's Published hook given in the configuration was not called")
	}

	// Running: a revocation and its notification reach all three again.
	late := issue(t, st, 4)
	revoke(t, st, late)
	woken := replication.n.Load()
	notifier.Notify()
	waitFor(t, "the later revocation to reach the cache, the replicas and the CRL", func() bool {
		return cache.has(late) == 1 && replication.n.Load() > woken && visible(t, reg)["crl"] == 2
	})
	if got := visible(t, reg); got["ocsp"] != 2 {
		t.Errorf("shomei_revocation_visible_seconds counts %v, want ocsp 2", got)
	}
	der, err := st.CRL(partition)
	if err != nil || len(der) == 0 {
		t.Fatalf("no CRL saved for %s: %v", partition, err)
	}
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, e := range list.RevokedCertificateEntries {
		listed[e.SerialNumber.String()] = true
	}
	for _, serial := range [][]byte{old, cert, late} {
		if n := new(big.Int).SetBytes(serial).String(); !listed[n] {
			t.Errorf("the CRL does not list %s (it lists %v)", n, listed)
		}
	}
	if p.Publisher() == nil {
		t.Error("no publisher to serve the CRLs")
	}
}

// failingLog fails its first reads of the status-change log.
type failingLog struct {
	propagation.ChangeLog
	fail atomic.Int64
}

func (l *failingLog) Changes(since uint64, fn func(*storev1.StatusChange) error) error {
	if l.fail.Add(-1) >= 0 {
		return errors.New("injected: the store cannot be read")
	}
	return l.ChangeLog.Changes(since, fn)
}

// A read of the log that fails loses nothing: the poll after it reads
// the change again and drops the revoked serial from the cache.
func TestPropagationRetriesFailedRead(t *testing.T) {
	st := open.Store(t)
	cert := issue(t, st, 3)
	issuer := newIssuer(t)
	log := &failingLog{ChangeLog: st}
	cache := &recordingCache{}
	p, err := propagation.New(propagation.Config{
		Notifier: propagation.NewNotifier(), Changes: log, Cache: cache,
		CRL:  crl.PublisherConfig{Source: st, Issuers: issuer.get, Poll: time.Hour},
		Poll: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	log.fail.Store(3)
	revoke(t, st, cert)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { p.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()
	waitFor(t, "the revocation to reach the cache after failed reads", func() bool { return cache.has(cert) == 1 })
	if log.fail.Load() >= 0 {
		t.Errorf("the injected failures were not all hit (%d left)", log.fail.Load()+1)
	}
}

// New refuses a configuration missing what it needs.
func TestNewRefuses(t *testing.T) {
	st := open.Store(t)
	issuer := newIssuer(t)
	good := propagation.Config{Notifier: propagation.NewNotifier(), Changes: st, Cache: &recordingCache{},
		CRL: crl.PublisherConfig{Source: st, Issuers: issuer.get}}
	for name, change := range map[string]func(*propagation.Config){
		"no notifier":   func(c *propagation.Config) { c.Notifier = nil },
		"no change log": func(c *propagation.Config) { c.Changes = nil },
		"no cache":      func(c *propagation.Config) { c.Cache = nil },
		"no CRL source": func(c *propagation.Config) { c.CRL.Source = nil },
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			change(&c)
			if _, err := propagation.New(c); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := propagation.New(good); err != nil {
		t.Errorf("the complete configuration: %v", err)
	}
}

// issue records an issued SIGN certificate with serial n in the test
// partition, and returns its serial.
func issue(t *testing.T, st *store.Store, n uint64) []byte {
	t.Helper()
	serial := binary.BigEndian.AppendUint64(nil, 1000+n)
	key := sha256.Sum256(serial)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Uint64(n) })
	tbs := b.BytesOrPanic()
	rec := &storev1.Certificate{
		Serial: serial, Profile: storev1.Profile_PROFILE_SIGN, IssuerGeneration: 1, MunicipalityCode: "13221",
		HolderId: "holder-" + string(rune('a'+n)), State: storev1.CertState_CERT_STATE_PENDING, TbsDer: tbs,
		PublicKeySha256: key[:], CrlPartition: partition,
		NotBefore: timestamppb.New(t0.Add(-time.Hour)), NotAfter: timestamppb.New(t0.AddDate(5, 0, 0)),
	}
	if err := st.Reserve(store.Reservation{Certs: []*storev1.Certificate{rec}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	// The store reads only the TBS back from the "signed" certificate.
	var c cryptobyte.Builder
	c.AddASN1(cbasn1.SEQUENCE, func(c *cryptobyte.Builder) {
		c.AddBytes(tbs)
		c.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
	})
	if err := st.Complete(store.Completion{DER: map[string][]byte{string(serial): c.BytesOrPanic()}, Now: t0,
		Partitions: []*storev1.CRLPartition{{Name: partition, Profile: storev1.Profile_PROFILE_SIGN, IssuerGeneration: 1,
			Url: "http://127.0.0.1:8080/crl/" + partition + ".crl", DistributionPoint: []string{"C=JP", "O=Shomei", "CN=" + partition}}},
	}); err != nil {
		t.Fatal(err)
	}
	return serial
}

func revoke(t *testing.T, st *store.Store, serial []byte) {
	t.Helper()
	if _, err := st.Revoke(store.RevokeRequest{Municipality: "13221", Serials: [][]byte{serial},
		Reason: 1, InvalidityDate: t0, Now: time.Now(), Actor: "propagation test", Cause: "test"}); err != nil {
		t.Fatal(err)
	}
}

// testIssuer is the issuer key generation signing the test partition's CRLs.
type testIssuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (i *testIssuer) get(storev1.Profile, uint32) (*x509.Certificate, crypto.Signer, error) {
	return i.cert, i.key, nil
}

func newIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"JP"}, CommonName: "Shomei test issuer"},
		NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	cert, err := testenv.SelfSigned(tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return &testIssuer{cert: cert, key: key}
}

// visible is shomei_revocation_visible_seconds' sample count by via.
func visible(t *testing.T, reg *prometheus.Registry) map[string]uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "shomei_revocation_visible_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	return counts
}

func waitFor(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
