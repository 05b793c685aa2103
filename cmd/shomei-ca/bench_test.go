package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/softhsm"
)

// BenchmarkIssue measures end-to-end Issue throughput — a real gRPC client
// over TCP to the CA (run in this process), HSM signing in SoftHSM2, bbolt
// on disk — next to the raw RSA-2048 signing rate of the same token, in one
// run:
//
//	go test -run '^$' -bench Issue -benchtime 2000x ./cmd/shomei-ca
//
// Card keys are ECDSA P-256 so that making thousands of them does not
// dominate the set-up; the CA's work per certificate is the same.
func BenchmarkIssue(b *testing.B) {
	addr := benchCA(b)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("raw-hsm-rsa2048/workers=%d", workers), func(b *testing.B) { benchRawSign(b, workers) })
	}
	for _, profiles := range []int{1, 2} {
		name := map[int]string{1: "single", 2: "pair"}[profiles]
		for _, clients := range []int{1, 2, 8} {
			b.Run(fmt.Sprintf("%s/clients=%d", name, clients), func(b *testing.B) { benchIssue(b, addr, profiles, clients) })
		}
	}
}

var (
	benchOnce sync.Once
	benchAddr string
	benchSeq  atomic.Int64
)

// benchCA starts one CA for all sub-benchmarks.
func benchCA(b *testing.B) string {
	benchOnce.Do(func() {
		dir, err := makeTempDir()
		if err != nil {
			b.Fatal(err)
		}
		conf := writeConfig(b, dir, "e2e-bench", "certificates:\n  allow_ecdsa_p256: true\n")
		ready := make(chan string, 1)
		go func() {
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			if err := run(context.Background(), conf, log, func(g, _ net.Addr) { ready <- g.String() }); err != nil {
				panic(err)
			}
		}()
		select {
		case benchAddr = <-ready:
		case <-time.After(60 * time.Second):
			b.Fatal("CA did not start")
		}
	})
	return benchAddr
}

func makeTempDir() (string, error) { return testDir.Root + "/bench", mkdir(testDir.Root + "/bench") }

func benchRawSign(b *testing.B, workers int) {
	mod, err := softhsm.Module()
	if err != nil {
		b.Fatal(err)
	}
	tok, err := hsm.Open(hsm.Config{Module: mod, TokenLabel: "e2e-bench", PIN: softhsm.TestPIN, PoolSize: workers})
	if err != nil {
		b.Fatal(err)
	}
	defer tok.Close()
	ref := hsm.KeyRef{Label: "raw-bench", ID: []byte(fmt.Sprint(time.Now().UnixNano()))}
	s, err := tok.GenerateKey(context.Background(), ref, hsm.RSA2048)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("bench"))
	parallel(b, workers, func() error {
		_, err := s.Sign(nil, digest[:], crypto.SHA256)
		return err
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}

func benchIssue(b *testing.B, addr string, profiles, clients int) {
	p := &caProc{grpc: addr}
	cl := p.client(b)
	// Every certificate needs its own card key (R-P1): make them first.
	csrs := make([][]byte, b.N*profiles)
	for i := range csrs {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		csrs[i] = csr(b, key)
	}
	card := time.Now().AddDate(8, 0, 0).Format(time.DateOnly)
	var next atomic.Int64
	b.ResetTimer()
	parallel(b, clients, func() error {
		i := int(next.Add(1) - 1)
		req := &cav1.IssueRequest{
			Municipality: kiyose,
			Holder:       holder(fmt.Sprintf("BENCH-%d", benchSeq.Add(1))),
			Application:  &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: card},
			Profiles:     []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: csrs[i*profiles]}},
		}
		if profiles == 2 {
			req.Profiles = append(req.Profiles, &cav1.ProfileRequest{Profile: cav1.Profile_PROFILE_SIGN, Csr: csrs[i*profiles+1]})
		}
		_, err := cl.Issue(context.Background(), req)
		return err
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(float64(b.N*profiles)/b.Elapsed().Seconds(), "certs/s")
}

// parallel runs b.N calls of fn on workers goroutines.
func parallel(b *testing.B, workers int, fn func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	b.ResetTimer()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := fn(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
