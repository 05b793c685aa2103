package service_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"testing"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/crl"
)

// TestCRLShards issues SIGN and AUTH certificates to eight holders of one
// municipality at once, over gRPC, with CRL partitions of three
// certificates (R-R5): every partition holds at most three, shards fill in
// order (3, 3, 2), shard 0 keeps the name partitions had before shards
// (sign-g1-13221), and every certificate names its shard in both
// cRLDistributionPoints names, the URL and the directoryName, as the
// store recorded it. crl.PartitionOf reads the shard back.
func TestCRLShards(t *testing.T) {
	t.Parallel()
	const size, holders = 3, 8
	h := start(t, tokenShards, options{allowP256: true, crlShardSize: size})

	type result struct {
		out issued
		err error
	}
	results := make([]result, holders)
	var wg sync.WaitGroup
	for i := range holders {
		req := request(resident(fmt.Sprintf("shard-holder-%02d", i), "1990-06-15"), application(self, "2035-06-15"),
			sign(p256CSR(t)), auth(p256CSR(t)))
		wg.Go(func() {
			out, err := h.call(false, req)
			results[i] = result{out, err}
		})
	}
	wg.Wait()

	// partition → certificates, per profile
	got := map[cav1.Profile]map[string]int{signProfile: {}, authProfile: {}}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("holder %d: refused: %s", i, describe(r.err))
		}
		for _, c := range r.out.certs {
			cert := h.checkCertificate(t, c, h.clock.Now())
			rec, err := h.store.Certificate(cert.SerialNumber.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			checkShard(t, cert, rec.CrlPartition)
			got[c.Profile][rec.CrlPartition]++
		}
	}
	for p, short := range map[cav1.Profile]string{signProfile: "sign", authProfile: "auth"} {
		want := map[string]int{short + "-g1-13221": 3, short + "-g1-13221-s1": 3, short + "-g1-13221-s2": 2}
		if fmt.Sprint(got[p]) != fmt.Sprint(want) {
			t.Errorf("%s certificates by partition: %v, want %v (shards of %d, filled in order)", short, got[p], want, size)
		}
		for name, n := range want {
			if counted, err := h.store.CRLShardCount(name); err != nil || counted != n {
				t.Errorf("the store counts %d certificates in %s (%v), want %d", counted, name, err, n)
			}
		}
	}

	// The next holder goes to the open shard, s2, and the one after to s3.
	for i, want := range []string{"auth-g1-13221-s2", "auth-g1-13221-s3"} {
		out := h.issue(t, request(resident(fmt.Sprintf("shard-late-%d", i), "1990-06-15"), application(self, "2035-06-15"), auth(p256CSR(t))))
		checkShard(t, out.x509[0], want)
	}
}

// checkShard checks that cert is issued into partition: the URL
// http://shomei.example/crl/<partition>.crl and the directoryName of its
// shard, CN=清瀬市 CRLDP for shard 0 and CN=清瀬市 CRLDP s<n> for shard n.
func checkShard(t *testing.T, cert *x509.Certificate, partition string) {
	t.Helper()
	p, err := crl.PartitionOf(cert)
	if err != nil {
		t.Fatalf("certificate %x: %v", cert.SerialNumber, err)
	}
	cn := "清瀬市 CRLDP"
	if _, shard, ok := strings.Cut(partition, "-13221-s"); ok {
		cn += " s" + shard
	}
	if p.Name != partition || p.URL != "http://shomei.example/crl/"+partition+".crl" {
		t.Errorf("certificate %x is in partition %s (%s), recorded in %s", cert.SerialNumber, p.Name, p.URL, partition)
	}
	if last := p.DistributionPoint[len(p.DistributionPoint)-1]; last.Type != "CN" || last.Value != cn {
		t.Errorf("certificate %x of %s: directoryName %s, want it to end in CN=%s", cert.SerialNumber, partition, p.DistributionPoint, cn)
	}
}

// p256CSR is the request of a fresh ECDSA P-256 card key (options.allowP256),
// quick to make where RSA keys are not.
func p256CSR(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return csrOf(t, k)
}
