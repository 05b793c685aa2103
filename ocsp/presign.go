package ocsp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/internal/ratelimit"
)

// Defaults and bounds of PresignConfig.
const (
	// DefaultPresignBudget is the pre-signer's signatures a second: with
	// the default refresh (3/8 of a 1 h validity) it keeps about 135,000
	// certificates pre-signed. Size it as certificates / RefreshAfter,
	// with room for the status changes.
	DefaultPresignBudget = 100
	// MaxPresignBudget bounds PresignConfig.Budget and Burst.
	MaxPresignBudget = 100_000
	// DefaultPresignWorkers is how many signatures are made at once.
	DefaultPresignWorkers = 4
	// MaxPresignWorkers bounds PresignConfig.Workers.
	MaxPresignWorkers = 64
)

const (
	// presignBatch bounds the tasks one Step reads and signs.
	presignBatch = 256
	// presignPoll is how often an idle pre-signer looks for work.
	presignPoll = time.Second
	// presignRetry is how long a response that could not be made waits.
	presignRetry = time.Minute
	// backfillPage is how many certificates one backfill call looks at.
	backfillPage = 1000
	// backlogCap bounds the count of the backlog gauge.
	backlogCap = 100_000
	// statsEvery is how often the store's gauges are read.
	statsEvery = time.Second
)

// PresignTask is a certificate whose pre-signed response is due: its
// status changed (it was issued or revoked), it has none yet, or its
// response is due for refresh.
type PresignTask struct {
	// Key names the task in the store's queue; given back in PresignDone.
	Key []byte
	// Serial is the certificate's serial number.
	Serial *big.Int
	// Issuer is the certificate of its issuer key generation.
	Issuer *x509.Certificate
	// Status is its recorded status: Good or Revoked. A replica sets
	// ThisUpdate (when it was last in sync).
	Status Status
	// Revision is the store's status-change revision Status was read at.
	Revision uint64
	// Drop: it needs no pre-signed response (expired, never issued); the
	// store forgets it and any response it has.
	Drop bool
}

// PresignDone is what became of a task.
type PresignDone struct {
	// Key and Serial are the task's.
	Key    []byte
	Serial []byte
	// Response is the response to keep, and its refresh to queue. Nil
	// with Retry zero: drop the task and any stored response.
	Response *storev1.PresignedResponse
	// Retry, when set, leaves the stored response as it is and queues the
	// task again for then (no responder for its issuer yet, a signing
	// failure).
	Retry time.Time
}

// PresignStore is where a Presigner finds its work and keeps what it
// signs, besides serving it (ResponseStore). It keeps a queue of tasks
// ordered by due time, status changes first: the transaction that changes
// a certificate's status (issuance, revocation) drops its response and
// queues it at once, and a stored response queues its own refresh.
type PresignStore interface {
	ResponseStore
	// PresignDue returns up to limit tasks due at now, the earliest first.
	PresignDue(now time.Time, limit int) ([]PresignTask, error)
	// SavePresigned applies done in one transaction and says how many
	// responses it stored: a response only if the certificate's recorded
	// status is still the one it gives (else its status changed since the
	// task was read, and the change queued it again).
	SavePresigned(done []PresignDone) (stored int, err error)
	// PresignBackfill queues up to limit certificates that are live but
	// have neither a response nor a task (a store older than
	// pre-signing), resuming where the last call stopped; done once the
	// walk has reached the end.
	PresignBackfill(now time.Time, limit int) (done bool, err error)
	// PresignStats counts the tasks due at now, up to max, and says when
	// the oldest stored response was signed (its thisUpdate; zero when
	// there is none).
	PresignStats(now time.Time, max int) (backlog int, oldest time.Time, err error)
}

// PresignConfig configures a Presigner.
type PresignConfig struct {
	// Responder signs the responses with its current issuers and
	// validity; required.
	Responder *Responder
	// Store is the queue and where the responses are kept; required.
	Store PresignStore
	// Budget is how many signatures a second the pre-signer makes, apart
	// from the responder's SignatureBudget; default DefaultPresignBudget,
	// at most MaxPresignBudget.
	Budget float64
	// Burst is how many it may make at once; default one second's worth.
	Burst int
	// RefreshAfter is how old a response is when it is signed again;
	// default 3/8 of the validity: a response is served until it is half
	// its validity old, so the default leaves an eighth of the validity
	// for a backlog. It must be less than half the validity.
	RefreshAfter time.Duration
	// Workers is how many signatures are made at once; default
	// DefaultPresignWorkers, at most MaxPresignWorkers.
	Workers int
	// Now is the clock of the budget and the queue; default the
	// Responder's.
	Now     func() time.Time
	Log     *slog.Logger
	Metrics prometheus.Registerer
}

// Presigner keeps a pre-signed response for every live certificate (doc.go
// # Pre-signed responses): it follows its store's queue, signs within its
// own budget and stores what it signs.
type Presigner struct {
	r            *Responder
	store        PresignStore
	bucket       *ratelimit.Bucket
	refreshAfter time.Duration
	workers      int
	now          func() time.Time
	log          *slog.Logger
	wake         chan struct{}
	running      atomic.Bool
	m            *presignMetrics

	// Touched by Run alone.
	backfilled bool
	lastStats  time.Time
	sinceStats int
}

// NewPresigner checks cfg and makes a Presigner; its Responder's
// Invalidate wakes it from then on.
func NewPresigner(cfg PresignConfig) (*Presigner, error) {
	if cfg.Responder == nil || cfg.Store == nil {
		return nil, errors.New("ocsp: PresignConfig.Responder and Store are required")
	}
	p := &Presigner{r: cfg.Responder, store: cfg.Store, refreshAfter: cfg.RefreshAfter, workers: cfg.Workers,
		now: cfg.Now, log: cfg.Log, wake: make(chan struct{}, 1)}
	validity := p.r.validity
	switch {
	case p.refreshAfter == 0:
		p.refreshAfter = validity * 3 / 8
	case p.refreshAfter < 0 || p.refreshAfter >= validity/2:
		return nil, fmt.Errorf("ocsp: PresignConfig.RefreshAfter %v: more than 0 and less than half the validity %v (a response is served until then)", p.refreshAfter, validity)
	}
	switch {
	case p.workers == 0:
		p.workers = DefaultPresignWorkers
	case p.workers < 0 || p.workers > MaxPresignWorkers:
		return nil, fmt.Errorf("ocsp: PresignConfig.Workers %d: 1 to %d", p.workers, MaxPresignWorkers)
	}
	budget, burst := cfg.Budget, cfg.Burst
	if budget == 0 {
		budget = DefaultPresignBudget
	}
	if burst == 0 {
		burst = max(1, int(budget))
	}
	if budget < 0 || budget > MaxPresignBudget || burst < 0 || burst > MaxPresignBudget {
		return nil, fmt.Errorf("ocsp: PresignConfig.Budget %v, Burst %d: more than 0, at most %d", cfg.Budget, cfg.Burst, MaxPresignBudget)
	}
	if p.now == nil {
		p.now = p.r.now
	}
	if p.log == nil {
		p.log = p.r.log
	}
	var err error
	if p.bucket, err = ratelimit.NewBucket(budget, burst, p.now()); err != nil {
		return nil, fmt.Errorf("ocsp: PresignConfig.Budget, Burst: %w", err)
	}
	if p.m, err = newPresignMetrics(cfg.Metrics); err != nil {
		return nil, fmt.Errorf("ocsp: pre-signer metrics: %w", err)
	}
	p.r.presigner.Store(p)
	return p, nil
}

// Notify wakes the pre-signer: a status changed (Responder.Invalidate
// calls it). It never blocks.
func (p *Presigner) Notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run pre-signs until ctx ends: the backfill of certificates older than
// pre-signing first, then every task as it falls due, within the budget.
// Only one Run works at a time (a CA pre-signs while it leads); another
// returns at once.
func (p *Presigner) Run(ctx context.Context) {
	if !p.running.CompareAndSwap(false, true) {
		p.log.Error("ocsp: the pre-signer is already running")
		return
	}
	defer p.running.Store(false)
	failures := 0
	for ctx.Err() == nil {
		wait, err := p.round(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			wait = min(presignPoll<<min(failures-1, 6), presignRetry)
			p.log.Error("ocsp: pre-signing", "err", err, "retry_in", wait)
		} else {
			failures = 0
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-p.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// round is one turn of Run: a backfill page while the backfill lasts,
// one Step, and the gauges. It returns how long to wait before the next.
func (p *Presigner) round(ctx context.Context) (time.Duration, error) {
	now := p.now()
	if !p.backfilled {
		done, err := p.store.PresignBackfill(now, backfillPage)
		if err != nil {
			return 0, fmt.Errorf("backfill: %w", err)
		}
		if done {
			p.backfilled = true
			p.log.Info("ocsp: every live certificate is queued for pre-signing")
		}
	}
	step, err := p.Step(ctx)
	p.sinceStats += step.Signed
	if now := p.now(); now.Sub(p.lastStats) >= statsEvery {
		if serr := p.stats(now); serr != nil && err == nil {
			err = serr
		}
	}
	if !p.backfilled {
		return 0, err
	}
	return step.Wait, err
}

// stats reads the store's gauges and the signature rate since the last.
func (p *Presigner) stats(now time.Time) error {
	backlog, oldest, err := p.store.PresignStats(now, backlogCap)
	if err != nil {
		return fmt.Errorf("statistics: %w", err)
	}
	p.m.backlog.Set(float64(backlog))
	age := 0.0
	if !oldest.IsZero() {
		age = max(0, now.Sub(oldest).Seconds())
	}
	p.m.oldestAge.Set(age)
	if !p.lastStats.IsZero() {
		if d := now.Sub(p.lastStats).Seconds(); d > 0 {
			p.m.rate.Set(float64(p.sinceStats) / d)
		}
	}
	p.lastStats, p.sinceStats = now, 0
	return nil
}

// PresignStep is what one Step did.
type PresignStep struct {
	// Signed is how many responses it signed, Stored how many it kept.
	Signed, Stored int
	// Wait is how long until it can do more: until the budget has a
	// signature, or the poll when nothing more is due; 0 when more is due
	// now.
	Wait time.Duration
}

// Step takes the tasks due now from the store, signs as many as the budget
// allows, and stores them. Tasks over the budget stay queued.
func (p *Presigner) Step(ctx context.Context) (PresignStep, error) {
	var res PresignStep
	now := p.now()
	tasks, err := p.store.PresignDue(now, presignBatch)
	if err != nil {
		return res, fmt.Errorf("reading the queue: %w", err)
	}
	set := p.r.set.Load()
	type job struct {
		task PresignTask
		is   *issuer
	}
	var jobs []job
	var done []PresignDone
	spent := false
	for _, t := range tasks {
		if t.Drop || t.Serial == nil {
			done = append(done, PresignDone{Key: t.Key, Serial: serialBytes(t.Serial)})
			continue
		}
		var is *issuer
		if t.Issuer != nil {
			is = set.byCert[string(t.Issuer.Raw)]
		}
		if is == nil {
			// No responder for that generation yet (responders.Keeper
			// retries within a minute).
			p.m.failures.Inc()
			done = append(done, PresignDone{Key: t.Key, Serial: t.Serial.Bytes(), Retry: now.Add(presignRetry)})
			continue
		}
		ok, wait := p.bucket.Allow(now)
		if !ok {
			spent, res.Wait = true, wait
			break
		}
		jobs = append(jobs, job{t, is})
	}
	results := make([]PresignDone, len(jobs))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(p.workers, len(jobs)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(jobs); i = int(next.Add(1) - 1) {
				results[i] = p.sign(ctx, jobs[i].is, jobs[i].task, now)
			}
		})
	}
	wg.Wait()
	stopping := ctx.Err() != nil
	for _, d := range results {
		if d.Response != nil {
			res.Signed++
		}
		// Work cut short by a stop (or the end of the lead) stays
		// queued as it was: the next leader takes it at once.
		if d.Response != nil || !stopping {
			done = append(done, d)
		}
	}
	if len(done) > 0 {
		stored, err := p.store.SavePresigned(done)
		p.m.stored.Add(float64(stored))
		p.m.discarded.Add(float64(res.Signed - min(stored, res.Signed)))
		res.Stored = stored
		if err != nil {
			return res, fmt.Errorf("storing: %w", err)
		}
	}
	if !spent && len(tasks) < presignBatch {
		res.Wait = presignPoll
	}
	return res, nil
}

// sign makes t's response with is's responder, or says when to retry.
func (p *Presigner) sign(ctx context.Context, is *issuer, t PresignTask, now time.Time) PresignDone {
	d := PresignDone{Key: t.Key, Serial: t.Serial.Bytes()}
	start := time.Now()
	signed, resp, err := p.r.presign(ctx, is, t.Serial, t.Status)
	if err != nil && ctx.Err() != nil {
		d.Retry = now.Add(presignRetry)
		return d
	}
	if err != nil {
		p.m.failures.Inc()
		p.log.Warn("ocsp: pre-signing failed; retried later", "serial", fmt.Sprintf("%x", t.Serial), "err", err, "retry_in", presignRetry)
		d.Retry = now.Add(presignRetry)
		return d
	}
	p.m.signatures.Inc()
	p.m.signing.Observe(time.Since(start).Seconds())
	span := resp.nextUpdate.Sub(resp.thisUpdate)
	// Refresh at RefreshAfter, shortened in proportion when nextUpdate
	// was cut short by the responder's notAfter.
	after := time.Duration(float64(p.refreshAfter) * float64(span) / float64(p.r.validity)).Truncate(time.Second)
	d.Response = &storev1.PresignedResponse{
		BasicResponse:  signed,
		ResponderKeyId: is.responderKeyHash,
		ThisUpdate:     timestamppb.New(resp.thisUpdate),
		NextUpdate:     timestamppb.New(resp.nextUpdate),
		RefreshAt:      timestamppb.New(resp.thisUpdate.Add(max(after, time.Second))),
		Revoked:        t.Status.Status == Revoked,
		Revision:       t.Revision,
	}
	return d
}

func serialBytes(n *big.Int) []byte {
	if n == nil {
		return nil
	}
	return n.Bytes()
}

// presignMetrics are the pre-signer's metrics.
type presignMetrics struct {
	signatures, stored, discarded, failures prometheus.Counter
	backlog, oldestAge, rate                prometheus.Gauge
	signing                                 prometheus.Histogram
}

func newPresignMetrics(reg prometheus.Registerer) (*presignMetrics, error) {
	m := &presignMetrics{
		signatures: prometheus.NewCounter(prometheus.CounterOpts{Name: "shomei_ocsp_presign_signatures_total",
			Help: "HSM signatures the OCSP pre-signer made."}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{Name: "shomei_ocsp_presigned_total",
			Help: "Pre-signed OCSP responses stored (made when a status changed, or refreshed)."}),
		discarded: prometheus.NewCounter(prometheus.CounterOpts{Name: "shomei_ocsp_presign_discarded_total",
			Help: "Pre-signed responses not stored: the certificate's status changed while they were signed."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "shomei_ocsp_presign_failures_total",
			Help: "Pre-signed responses that could not be made (no responder for the issuer yet, a signing error); each is tried again a minute later."}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shomei_ocsp_presign_backlog",
			Help: "Pre-signed responses due now and not yet made (status changes, refreshes), counted up to 100000."}),
		oldestAge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shomei_ocsp_presign_oldest_age_seconds",
			Help: "Age of the oldest stored pre-signed response (since its thisUpdate); it is served until half the response validity."}),
		rate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shomei_ocsp_presign_signatures_per_second",
			Help: "The pre-signer's signatures a second, over the last second or so."}),
		signing: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "shomei_ocsp_presign_signing_duration_seconds",
			Help: "Time to sign a pre-signed response.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.signatures, m.stored, m.discarded, m.failures, m.backlog, m.oldestAge, m.rate, m.signing} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
