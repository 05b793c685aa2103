package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// How often the events cell asks, and how long it waits at most.
const (
	ocspPoll     = 20 * time.Millisecond
	ocspWaitMax  = 30 * time.Second
	crlPoll      = 200 * time.Millisecond
	crlWaitAfter = 2 * time.Minute // after the last event
)

// eventsResult is what the events cell saw.
type eventsResult struct {
	Driver   string
	Stored   int
	Rate     int
	Duration time.Duration
	// Sent events; Failed: ReportEvent failed or revoked no one
	// certificate.
	Sent, Failed int
	FirstError   string
	// OCSP and CRL are the times from sending each event until the CA's
	// OCSP answered revoked, and until the partition's CRL listed it,
	// sorted; the Missing ones were not seen within ocspWaitMax and
	// crlWaitAfter.
	OCSP, CRL                 []time.Duration
	OCSPMissing, CRLMissing   int
	CRLFetches, CRLLargestLen int
	// Issue is the issuance that ran meanwhile.
	Issue issueResult
}

// event is one address change as the cell follows it.
type event struct {
	sent      time.Time
	serial    *big.Int
	ocsp, crl time.Duration
}

// runEvents sends o.EventRate address-change events a second for
// o.EventDuration, each for one preloaded holder, whose SIGN certificate it
// revokes (R-R1), while load goes on issuing; it polls the CA's OCSP for
// each revoked serial until it answers revoked, and the partition's CRL
// until it lists them.
func (d *scaleCA) runEvents(ctx context.Context, r *runningCA, load *issueLoad, stored int) (*eventsResult, error) {
	o := d.o
	res := &eventsResult{Driver: d.driver, Stored: stored, Rate: o.EventRate, Duration: o.EventDuration}
	signIssuer, err := fetchIssuerCert(ctx, r.http, "shomei-sign-g1")
	if err != nil {
		return nil, err
	}
	hashes, err := hashesOf(signIssuer)
	if err != nil {
		return nil, err
	}
	crlURL, err := localCRL(d.templateSign, r.http)
	if err != nil {
		return nil, err
	}
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	n := o.events()
	evs := make([]*event, n)
	var mu sync.Mutex
	var failed atomic.Int64
	fail := func(err error) {
		failed.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if res.FirstError == "" {
			res.FirstError = err.Error()
		}
	}

	issued := make(chan issueResult, 1)
	go func() {
		ir, err := load.window(ctx, r.Cmd.Process.Pid, o.EventDuration, d.storeCPU())
		if err != nil {
			fail(err)
		}
		issued <- ir
	}()
	crlDone := make(chan struct{})
	var sentAll atomic.Bool
	var lastSent atomic.Int64
	go func() {
		defer close(crlDone)
		res.CRLFetches, res.CRLLargestLen = pollCRL(ctx, httpc, crlURL, evs, &mu, &sentAll, &lastSent)
	}()

	var wg sync.WaitGroup
	began := time.Now()
	interval := time.Second / time.Duration(o.EventRate)
	for i := range n {
		if wait := time.Until(began.Add(time.Duration(i) * interval)); wait > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
		wg.Go(func() {
			e, err := sendEvent(ctx, r.events, d.driver, i)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			evs[i] = e
			mu.Unlock()
			lastSent.Store(time.Now().UnixNano())
			if err := awaitOCSP(ctx, httpc, r.http, hashes, signIssuer, e, &mu); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	sentAll.Store(true)
	<-crlDone
	res.Issue = <-issued
	res.Sent, res.Failed = n, int(failed.Load())
	for _, e := range evs {
		if e == nil {
			continue
		}
		if e.ocsp > 0 {
			res.OCSP = append(res.OCSP, e.ocsp)
		} else {
			res.OCSPMissing++
		}
		if e.crl > 0 {
			res.CRL = append(res.CRL, e.crl)
		} else {
			res.CRLMissing++
		}
	}
	slices.Sort(res.OCSP)
	slices.Sort(res.CRL)
	return res, nil
}

// sendEvent reports the address change of preloaded holder i, which must
// revoke its SIGN certificate.
func sendEvent(ctx context.Context, events cav1.EventsClient, driver string, i int) (*event, error) {
	callCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	e := &event{sent: time.Now()}
	resp, err := events.ReportEvent(callCtx, &cav1.ReportEventRequest{
		EventId: fmt.Sprintf("scale-%s-%d", driver, i), MunicipalityCode: testenv.Kiyose().Code, HolderId: preloadHolder(i),
		Kind:          cav1.EventKind_EVENT_KIND_RECORD_CHANGE,
		ChangedFields: []cav1.ChangedField{cav1.ChangedField_CHANGED_FIELD_ADDRESS}, Cause: cav1.ChangeCause_CHANGE_CAUSE_MOVE,
		EffectiveTime: e.sent.Format(time.RFC3339),
	})
	if err != nil {
		return nil, fmt.Errorf("ReportEvent %d: %w", i, err)
	}
	if len(resp.Revoked) != 1 || resp.Revoked[0].Profile != cav1.Profile_PROFILE_SIGN || resp.Revoked[0].AlreadyRevoked {
		return nil, fmt.Errorf("the address change of %s revoked %d certificates (%v), want its SIGN certificate", preloadHolder(i), len(resp.Revoked), resp.Revoked)
	}
	sn, ok := new(big.Int).SetString(resp.Revoked[0].Serial, 16)
	if !ok {
		return nil, fmt.Errorf("ReportEvent %d: serial %q is not hex", i, resp.Revoked[0].Serial)
	}
	e.serial = sn
	return e, nil
}

// awaitOCSP asks the CA's OCSP about e's serial every ocspPoll until the
// verified answer is revoked, and records when.
func awaitOCSP(ctx context.Context, httpc *http.Client, httpAddr string, h issuerHashes, issuer *x509.Certificate, e *event, mu *sync.Mutex) error {
	der, err := buildRequest(h, e.serial, false)
	if err != nil {
		return err
	}
	for deadline := e.sent.Add(ocspWaitMax); time.Now().Before(deadline); time.Sleep(ocspPoll) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/ocsp", bytes.NewReader(der))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/ocsp-request")
		resp, err := httpc.Do(req)
		if err != nil {
			return fmt.Errorf("OCSP for %x: %w", e.serial, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("OCSP for %x: HTTP %s, %v", e.serial, resp.Status, err)
		}
		r, err := ocsp.ParseResponse(body, issuer)
		if err != nil {
			return fmt.Errorf("OCSP for %x: %w", e.serial, err)
		}
		if r.SerialNumber.Cmp(e.serial) != 0 {
			return fmt.Errorf("OCSP for %x answered for %x", e.serial, r.SerialNumber)
		}
		if r.Status == ocsp.Revoked {
			mu.Lock()
			e.ocsp = time.Since(e.sent)
			mu.Unlock()
			return nil
		}
	}
	return nil // missing: counted by the caller
}

// pollCRL fetches the partition's CRL every crlPoll and records, for each
// event sent, when a CRL first listed its serial (the time the fetch
// returned: at most crlPoll late). It ends when every sent event is
// listed, or crlWaitAfter after the last was sent. It returns the fetches
// made and the largest CRL's length.
func pollCRL(ctx context.Context, httpc *http.Client, crlURL string, evs []*event, mu *sync.Mutex, sentAll *atomic.Bool, lastSent *atomic.Int64) (fetches, largest int) {
	for ctx.Err() == nil {
		time.Sleep(crlPoll)
		body, err := get(ctx, httpc, crlURL)
		got := time.Now()
		if err == nil {
			fetches++
			largest = max(largest, len(body))
			if rl, perr := x509.ParseRevocationList(body); perr == nil {
				listed := make(map[string]bool, len(rl.RevokedCertificateEntries))
				for _, e := range rl.RevokedCertificateEntries {
					listed[string(e.SerialNumber.Bytes())] = true
				}
				mu.Lock()
				for _, e := range evs {
					if e != nil && e.crl == 0 && listed[string(e.serial.Bytes())] {
						e.crl = got.Sub(e.sent)
					}
				}
				mu.Unlock()
			}
		}
		if !sentAll.Load() {
			continue
		}
		mu.Lock()
		pending := 0
		for _, e := range evs {
			if e != nil && e.crl == 0 {
				pending++
			}
		}
		mu.Unlock()
		if pending == 0 || time.Since(time.Unix(0, lastSent.Load())) > crlWaitAfter {
			return fetches, largest
		}
	}
	return fetches, largest
}

// get fetches url's body.
func get(ctx context.Context, httpc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 256<<20))
}

// localCRL is the CRL distribution point of cert, asked of the CA's HTTP
// listener at httpAddr instead of its public URL's host.
func localCRL(cert *x509.Certificate, httpAddr string) (string, error) {
	if cert == nil || len(cert.CRLDistributionPoints) == 0 {
		return "", fmt.Errorf("no template SIGN certificate with a CRL distribution point")
	}
	u, err := url.Parse(cert.CRLDistributionPoints[0])
	if err != nil {
		return "", err
	}
	u.Scheme, u.Host = "http", httpAddr
	return u.String(), nil
}
