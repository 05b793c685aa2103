package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Result is the outcome of one check.
type Result struct {
	// Err, if set, makes the process not ready and says why.
	Err error
	// Degraded, if set, is a note: ready, but something needs an operator.
	Degraded string
}

// Check is one named readiness check.
type Check struct {
	// Name names the component, e.g. "hsm", "crl", "sync".
	Name string
	// Probe runs the check. It should be cheap and bounded by ctx.
	Probe func(ctx context.Context) Result
	// Every is how long a result is kept; zero runs the probe for every
	// verdict (for probes that only read memory).
	Every time.Duration
}

// Config configures a Checker.
type Config struct {
	Checks []Check
	// Timeout bounds one probe; 2 s when zero. A probe that overruns is not
	// ready.
	Timeout time.Duration
	Now     func() time.Time
	Log     *slog.Logger
}

// Checker runs the checks and serves their verdict.
type Checker struct {
	cfg Config

	mu      sync.Mutex
	cached  map[string]cachedResult
	flights map[string]*flight // probes under way, by check
	last    string             // the last not-ready reason logged, to log changes only
}

type cachedResult struct {
	r  Result
	at time.Time
}

// New checks cfg and returns a Checker.
func New(cfg Config) (*Checker, error) {
	for _, c := range cfg.Checks {
		if c.Name == "" || c.Probe == nil {
			return nil, errors.New("health: every check needs a name and a probe")
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Checker{cfg: cfg, cached: map[string]cachedResult{}, flights: map[string]*flight{}}, nil
}

// Report is the verdict of all checks.
type Report struct {
	Ready bool
	// Lines are "<name>: ok", "<name>: degraded: …" or "<name>: not ready: …",
	// one per check, in the configured order.
	Lines []string
}

func (r Report) String() string {
	head := "ready"
	if !r.Ready {
		head = "not ready"
	}
	return head + "\n" + strings.Join(r.Lines, "\n") + "\n"
}

// Status runs the checks whose kept result is older than their interval and
// returns the verdict.
func (c *Checker) Status(ctx context.Context) Report {
	rep := Report{Ready: true}
	for _, chk := range c.cfg.Checks {
		r := c.result(ctx, chk)
		switch {
		case r.Err != nil:
			rep.Ready = false
			rep.Lines = append(rep.Lines, fmt.Sprintf("%s: not ready: %v", chk.Name, r.Err))
		case r.Degraded != "":
			rep.Lines = append(rep.Lines, fmt.Sprintf("%s: degraded: %s", chk.Name, r.Degraded))
		default:
			rep.Lines = append(rep.Lines, chk.Name+": ok")
		}
	}
	return rep
}

func (c *Checker) result(ctx context.Context, chk Check) Result {
	now := c.cfg.Now()
	c.mu.Lock()
	kept, ok := c.cached[chk.Name]
	if ok && now.Sub(kept.at) < chk.Every {
		c.mu.Unlock()
		return kept.r
	}
	// One probe per check at a time, whoever asks: a flood of /readyz
	// when the kept result expires costs one probe (one HSM look-up),
	// and its result does not depend on a caller staying.
	fl := c.flights[chk.Name]
	if fl == nil {
		fl = &flight{done: make(chan struct{})}
		c.flights[chk.Name] = fl
		go c.probe(chk, fl, now)
	}
	c.mu.Unlock()
	select {
	case <-fl.done:
		return fl.r
	case <-ctx.Done():
		// Not kept: a caller that leaves (a client closing its
		// connection at once) must not make the process not ready.
		return Result{Err: fmt.Errorf("the caller left before the check answered: %w", ctx.Err())}
	}
}

// flight is a probe under way; r is set before done closes.
type flight struct {
	done chan struct{}
	r    Result
}

// probe runs chk, bounded by the Timeout but by no caller, keeps its result
// as of now, and ends fl.
func (c *Checker) probe(chk Check, fl *flight, now time.Time) {
	pctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	done := make(chan Result, 1)
	go func() { done <- chk.Probe(pctx) }()
	select {
	case fl.r = <-done:
	case <-pctx.Done():
		fl.r = Result{Err: fmt.Errorf("no answer within %s", c.cfg.Timeout)}
	}
	c.mu.Lock()
	c.cached[chk.Name] = cachedResult{r: fl.r, at: now}
	delete(c.flights, chk.Name)
	c.mu.Unlock()
	close(fl.done)
}

// Live serves liveness: 200 "ok" while the process serves HTTP.
func Live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// ServeHTTP serves readiness: 200 when ready, 503 when not, with one line
// per check saying why.
func (c *Checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := c.Status(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !rep.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprint(w, rep)
}

// Follow sets the serving status of every service hs knows (and of "") from
// readiness every interval until ctx ends: SERVING when ready, NOT_SERVING
// when not. It logs changes of the verdict.
func (c *Checker) Follow(ctx context.Context, hs *grpchealth.Server, services []string, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		rep := c.Status(ctx)
		st := healthpb.HealthCheckResponse_SERVING
		reason := ""
		if !rep.Ready {
			st, reason = healthpb.HealthCheckResponse_NOT_SERVING, strings.Join(rep.Lines, "; ")
		}
		if ctx.Err() != nil {
			return
		}
		for _, name := range append([]string{""}, services...) {
			hs.SetServingStatus(name, st)
		}
		c.mu.Lock()
		changed := reason != c.last
		c.last = reason
		c.mu.Unlock()
		if changed && reason != "" {
			c.cfg.Log.Warn("not ready", "reason", reason)
		} else if changed {
			c.cfg.Log.Info("ready again")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
