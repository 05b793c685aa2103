package hsm

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The kinds of shomei_hsm_errors_total, from the classification of this
// package's errors (errors.go, recoveryFor): a fixed set, never an error
// text.
const (
	// ErrorSession: the session went away (a new one mends it).
	ErrorSession = "session"
	// ErrorLogin: the PIN was refused, or the login was lost.
	ErrorLogin = "login"
	// ErrorDevice: the token or the device went away or failed (a
	// reconnect or a module re-initialisation mends it, if anything does).
	ErrorDevice = "device"
	// ErrorPool: every session stayed busy for the pool's wait timeout.
	ErrorPool = "pool"
	// ErrorSign: a signature failed, or did not verify with the key's
	// public key (ErrBadSignature).
	ErrorSign = "sign"
	// ErrorOther: any other failure of an HSM operation (a key not
	// found, a code that says nothing about the connection, …).
	ErrorOther = "other"
)

var errorKinds = []string{ErrorSession, ErrorLogin, ErrorDevice, ErrorPool, ErrorSign, ErrorOther}

// ErrorKind classifies an error of an HSM operation for
// shomei_hsm_errors_total; signing says the operation was a signature
// (its failures that say nothing about the connection are sign errors).
func ErrorKind(err error, signing bool) string {
	rec := recoveryFor(err)
	switch {
	case errors.Is(err, ErrPoolExhausted):
		return ErrorPool
	case isLoginRefusal(err), rec == relogin:
		return ErrorLogin
	case rec == newSession:
		return ErrorSession
	case errors.Is(err, ErrTokenUnavailable), errors.Is(err, ErrTokenNotFound), errors.As(err, new(keyVanished)),
		rec == reconnect, rec == reinitModule:
		return ErrorDevice
	case errors.Is(err, ErrBadSignature), signing:
		return ErrorSign
	}
	return ErrorOther
}

// tokenMetrics are a Token's metrics. They exist from Open; RegisterMetrics
// exports them.
type tokenMetrics struct {
	// down: the last operation failed for a reason that says the HSM
	// cannot be used (device, login, session); the next success clears it.
	down    atomic.Bool
	waiting atomic.Int64
	errors  *prometheus.CounterVec
	sign    prometheus.Histogram
}

func newTokenMetrics() *tokenMetrics {
	m := &tokenMetrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shomei_hsm_errors_total",
			Help: "Failed HSM operations (each attempt, also those a recovery then mended), by kind: " +
				"session, login, device, pool (no free session), sign, other."}, []string{"kind"}),
		sign: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "shomei_hsm_sign_duration_seconds",
			Help:    "Time to sign in the HSM, from asking for a session to the verified signature.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	for _, k := range errorKinds {
		m.errors.WithLabelValues(k)
	}
	return m
}

// failed counts the failure err of one attempt (ctx's own end is not an
// HSM error) and marks the HSM down when err says it cannot be used.
func (m *tokenMetrics) failed(ctx context.Context, err error, signing bool) {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return
	}
	kind := ErrorKind(err, signing)
	m.errors.WithLabelValues(kind).Inc()
	switch kind {
	case ErrorDevice, ErrorLogin, ErrorSession:
		m.down.Store(true)
	}
}

// RegisterMetrics exports the token's metrics to reg: shomei_hsm_up (0 from
// an operation that failed for the device, the login or the session until
// one succeeds; the CA's readiness probe checks the HSM regularly),
// shomei_hsm_sessions_in_use, shomei_hsm_sessions_waiting,
// shomei_hsm_sign_duration_seconds and shomei_hsm_errors_total{kind}. A
// process registers one Token.
func (t *Token) RegisterMetrics(reg prometheus.Registerer) error {
	c := &tokenCollector{t: t,
		up: prometheus.NewDesc("shomei_hsm_up",
			"1 when the HSM token answered its last operation (or failed it for a reason that is not about the token), 0 otherwise.", nil, nil),
		inUse: prometheus.NewDesc("shomei_hsm_sessions_in_use",
			"HSM sessions lent to operations now (at most the pool size).", nil, nil),
		waiting: prometheus.NewDesc("shomei_hsm_sessions_waiting",
			"Operations waiting for a free HSM session now.", nil, nil),
	}
	for _, col := range []prometheus.Collector{c, t.metrics.errors, t.metrics.sign} {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("hsm: metrics: %w", err)
		}
	}
	return nil
}

// tokenCollector reads the pool's state at scrape time.
type tokenCollector struct {
	t                  *Token
	up, inUse, waiting *prometheus.Desc
}

func (c *tokenCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.inUse
	ch <- c.waiting
}

func (c *tokenCollector) Collect(ch chan<- prometheus.Metric) {
	c.t.mu.Lock()
	up := !c.t.closed && c.t.loginErr == nil
	c.t.mu.Unlock()
	if c.t.metrics.down.Load() {
		up = false
	}
	v := 0.0
	if up {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, v)
	ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(len(c.t.sem)))
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(c.t.metrics.waiting.Load()))
}

// observeSign records one signature's time.
func (m *tokenMetrics) observeSign(start time.Time) {
	m.sign.Observe(time.Since(start).Seconds())
}
