package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// BenchmarkAddressChanges measures events/s for address-change events,
// each revoking one SIGN certificate (R-R1), through the real gRPC Events
// API of a CA running in this process (SoftHSM2, bbolt on disk), including
// the revocations' publication: the timer runs until every revocation is
// visible in OCSP and in its partition's CRL, as the CA's own freshness
// histogram (shomei_revocation_visible_seconds) counts them.
//
//	go test -run '^$' -bench AddressChanges -benchtime 2000x ./cmd/shomei-ca
//
// Metrics: accepted-events/s (until the last ReportEvent returned),
// events/s (until the last one is on the CRL), and the mean event→OCSP and
// event→CRL delays. All events are for one municipality, so they land in
// one CRL partition, rebuilt as they come (the worst case for CRL work).
// The certificates are issued before the timer starts, with ECDSA P-256
// card keys (quick to make; the revocation path does not depend on them).
func BenchmarkAddressChanges(b *testing.B) {
	grpcAddr, httpAddr := eventsBenchCA(b)
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchAddressChanges(b, grpcAddr, httpAddr, clients) })
	}
}

var (
	eventsBenchOnce       sync.Once
	eventsGRPC, eventsWeb string
	eventsSeq             atomic.Int64
)

func eventsBenchCA(b *testing.B) (string, string) {
	eventsBenchOnce.Do(func() {
		dir := testDir.Root + "/events-bench"
		if err := mkdir(dir); err != nil {
			b.Fatal(err)
		}
		conf := writeConfig(b, dir, "e2e-events-bench", "certificates:\n  allow_ecdsa_p256: true\n")
		initStore(b, conf)
		ready := make(chan [2]string, 1)
		go func() {
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			if err := run(context.Background(), conf, log, func(g, h net.Addr) { ready <- [2]string{g.String(), h.String()} }); err != nil {
				panic(err)
			}
		}()
		select {
		case a := <-ready:
			eventsGRPC, eventsWeb = a[0], a[1]
		case <-time.After(60 * time.Second):
			b.Fatal("CA did not start")
		}
	})
	return eventsGRPC, eventsWeb
}

func benchAddressChanges(b *testing.B, grpcAddr, httpAddr string, clients int) {
	p := &caProc{grpc: grpcAddr}
	cl, events := p.client(b), cav1.NewEventsClient(p.conn(b))
	ctx := context.Background()
	card := time.Now().AddDate(8, 0, 0).Format(time.DateOnly)

	// One SIGN certificate per event, issued first.
	holders := make([]string, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
				key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					errs <- err
					return
				}
				holders[i] = fmt.Sprintf("EVB-%d", eventsSeq.Add(1))
				_, err = cl.Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: holder(holders[i]),
					Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: card},
					Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_SIGN, Csr: csr(b, key)}}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	before := visibleCounts(b, httpAddr)
	effective := time.Now().Format(time.RFC3339)
	next.Store(0)
	var accepted time.Duration
	start := time.Now()
	testenv.Parallel(b, clients, func() error {
		i := int(next.Add(1) - 1)
		resp, err := events.ReportEvent(ctx, &cav1.ReportEventRequest{
			EventId: "evb-" + holders[i], MunicipalityCode: kiyose.Code, HolderId: holders[i],
			Kind:          cav1.EventKind_EVENT_KIND_RECORD_CHANGE,
			ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS}, Cause: cav1.ChangeCause_CHANGE_CAUSE_MOVE,
			EffectiveTime: effective,
		})
		if err == nil && len(resp.Revoked) != 1 {
			err = fmt.Errorf("address change of %s revoked %d certificates, want 1", holders[i], len(resp.Revoked))
		}
		return err
	})
	accepted = time.Since(start)
	// Until every revocation is visible in OCSP and on the CRL.
	b.StartTimer()
	var after map[string]visible
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		after = visibleCounts(b, httpAddr)
		if after["ocsp"].count-before["ocsp"].count >= b.N && after["crl"].count-before["crl"].count >= b.N {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after 2 minutes, %d of %d revocations visible in OCSP and %d on the CRL",
				after["ocsp"].count-before["ocsp"].count, b.N, after["crl"].count-before["crl"].count)
		}
	}
	b.StopTimer()
	all := time.Since(start)
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted-events/s")
	b.ReportMetric(float64(b.N)/all.Seconds(), "events/s")
	for _, via := range []string{"ocsp", "crl"} {
		n := after[via].count - before[via].count
		b.ReportMetric((after[via].sum-before[via].sum)/float64(n)*1000, "ms-to-"+via)
	}
}

type visible struct {
	count int
	sum   float64
}

var visibleMetric = regexp.MustCompile(`(?m)^shomei_revocation_visible_seconds_(count|sum)\{via="(\w+)"\} (\S+)$`)

// visibleCounts reads the freshness histogram's counts and sums.
func visibleCounts(b *testing.B, httpAddr string) map[string]visible {
	r, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	out := map[string]visible{}
	for _, m := range visibleMetric.FindAllStringSubmatch(string(body), -1) {
		v := out[m[2]]
		f, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			b.Fatal(err)
		}
		if m[1] == "count" {
			v.count = int(f)
		} else {
			v.sum = f
		}
		out[m[2]] = v
	}
	return out
}
