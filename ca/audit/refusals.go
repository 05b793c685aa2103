package audit

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
)

// ActionRefused is the audit action of refused requests.
const ActionRefused = "request.refused"

// DefaultRefusalWindow: at most one audit record per caller, method, code
// and rule in this window; the others are counted and the count goes into
// the next record.
const DefaultRefusalWindow = time.Minute

// maxRefusalKeys bounds the refusal keys remembered between windows, so a
// flood of distinct keys cannot grow memory: past it, the oldest window is
// forgotten early.
const maxRefusalKeys = 10_000

// Refusal is one refused call, as the audit log records it: names only,
// never the request's content or the refusal's description (they may carry
// personal data, R-P4).
type Refusal struct {
	Caller string // caller.Caller.String(), or "unauthenticated"
	Method string // the full gRPC method name
	Code   string // the gRPC code, e.g. "InvalidArgument"
	Rule   string // the first violation's rule id, e.g. "R-R6"; may be empty
	Field  string // the first violation's field; may be empty
}

// RefusalsConfig configures Refusals.
type RefusalsConfig struct {
	Store *store.Store // required
	// Window: see DefaultRefusalWindow.
	Window time.Duration
	// Metrics receives shomei_ca_refused_calls_total{caller,method,code};
	// none when nil. Caller names are configured client names.
	Metrics prometheus.Registerer
	Now     func() time.Time
	Log     *slog.Logger
}

// Refusals audits refused calls (R-K3) at a bounded rate: every refusal is
// counted in a metric, and the first of each caller, method, code and rule
// per window (whatever its field) is written to the audit log with how many
// like it were suppressed before it. Safe for concurrent use.
type Refusals struct {
	cfg     RefusalsConfig
	counter *prometheus.CounterVec

	mu      sync.Mutex
	windows map[Refusal]*refusalWindow
}

type refusalWindow struct {
	start      time.Time
	suppressed int
}

// NewRefusals checks cfg and registers the metric.
func NewRefusals(cfg RefusalsConfig) (*Refusals, error) {
	if cfg.Store == nil {
		return nil, errors.New("audit: refusals need a store")
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultRefusalWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	r := &Refusals{cfg: cfg, windows: map[Refusal]*refusalWindow{}}
	r.counter = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shomei_ca_refused_calls_total",
		Help: "gRPC calls refused, by caller (configured client name), method and code.",
	}, []string{"caller", "method", "code"})
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(r.counter); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Record counts a refusal and audits it unless one like it was audited in
// the current window.
func (r *Refusals) Record(f Refusal) {
	r.counter.WithLabelValues(f.Caller, f.Method, f.Code).Inc()
	now := r.cfg.Now()
	// The window's key leaves the field out: a caller picks the field
	// (any index of a list), and must not get a record per index.
	key := f
	key.Field = ""
	r.mu.Lock()
	w := r.windows[key]
	if w != nil && now.Sub(w.start) < r.cfg.Window {
		w.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := 0
	if w != nil {
		suppressed = w.suppressed
	}
	if len(r.windows) >= maxRefusalKeys {
		for k, old := range r.windows {
			if now.Sub(old.start) >= r.cfg.Window {
				delete(r.windows, k)
			}
		}
		if len(r.windows) >= maxRefusalKeys {
			clear(r.windows)
		}
	}
	r.windows[key] = &refusalWindow{start: now}
	r.mu.Unlock()

	actor := f.Caller
	if actor == "" {
		actor = "unauthenticated"
	}
	err := r.cfg.Store.AppendAudit(&storev1.AuditRecord{Time: timestamppb.New(now), Actor: actor, Action: ActionRefused,
		Fields: []*storev1.AuditField{{Key: "method", Value: f.Method}, {Key: "code", Value: f.Code}, {Key: "rule", Value: f.Rule},
			{Key: "field", Value: f.Field}, {Key: "suppressed_before", Value: fmt.Sprint(suppressed)}}})
	if err != nil {
		r.cfg.Log.Error("auditing a refused call failed", "method", f.Method, "error", err)
	}
}
