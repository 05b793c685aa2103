package ocsp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config.
const (
	DefaultValidity  = time.Hour
	DefaultCacheSize = 1 << 18
	DefaultTimeout   = 5 * time.Second
	DefaultPath      = "/ocsp"
)

// Limits on requests; beyond them a request is malformedRequest.
const (
	// maxRequestBytes bounds a request's DER. A one-CertID request with a
	// nonce is about 100 bytes; a signed one with its certificates a few
	// KiB.
	maxRequestBytes = 16 << 10
	// maxCertIDs bounds the CertIDs of one request.
	maxCertIDs = 16
)

// Config configures a Responder.
type Config struct {
	// Issuers are the issuer key generations answered for; at least one.
	Issuers []*Issuer
	// Source answers certificate statuses; required.
	Source Source
	// Validity is nextUpdate - thisUpdate; default DefaultValidity (1 h),
	// at least a minute. A response's nextUpdate never passes its
	// responder certificate's notAfter.
	Validity time.Duration
	// MaxAge caps the Cache-Control max-age of cacheable responses, which
	// is otherwise the time left until nextUpdate. 0: no cap.
	MaxAge time.Duration
	// GoodMaxAge, when set, caps the max-age of a cacheable response
	// whose every status is good instead of MaxAge; revoked ones keep
	// MaxAge. 0 sends max-age=0. A relying party or proxy that honours it
	// may keep a "good" for that long after a revocation (R-R4). Nil:
	// MaxAge, as before. At most Validity, whole seconds.
	GoodMaxAge *time.Duration
	// CacheSize is how many signed responses are kept; default
	// DefaultCacheSize. Negative: no cache, every response is signed.
	CacheSize int
	// Presigned, when set, is where the responses a Presigner made are
	// read: a one-CertID request without a nonce, for a SHA-1 CertID
	// as pre-signed, missing from the cache, is answered from there
	// without a signature when its response is current (presigned.go).
	// Requires the cache.
	Presigned ResponseStore
	// Timeout bounds the Source and the signature of one response;
	// default DefaultTimeout.
	Timeout time.Duration
	// Path is where the responder is served: POST to Path, GET Path/{request}.
	// Default DefaultPath ("/ocsp", as cmd/shomei-ca writes into
	// certificates); "/" serves at the root.
	Path string
	// SignatureBudget is how many fresh signatures per second the
	// responder makes: responses to requests with a nonce or several
	// CertIDs, and "unknown" answers not in the cache. Any caller can ask
	// for those without limit, so they are bounded to keep the HSM free for
	// issuance (issue #9 item 5). Over it a nonce request is answered from
	// the cache without its nonce (RFC 5019 §4, RFC 8954), anything else tryLater.
	// Default DefaultSignatureBudget (50); negative: unlimited.
	SignatureBudget float64
	// SignatureBurst is how many fresh signatures may be made at once;
	// default the larger of DefaultSignatureBurst (100) and twice
	// SignatureBudget.
	SignatureBurst int
	// UnknownReuse is how long a signed "unknown" answer for a serial is
	// served again from the cache; default DefaultUnknownReuse (1 min),
	// capped at half the validity. Issuing does not invalidate, so a
	// certificate asked about before its issuance completed is answered
	// unknown for up to this long.
	UnknownReuse time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log receives internal errors; default discards.
	Log *slog.Logger
	// Metrics, when set, registers the responder's metrics.
	Metrics prometheus.Registerer
}

// Responder is an RFC 6960 OCSP responder with the RFC 5019 profile, served
// over HTTP. It is safe for concurrent use.
type Responder struct {
	set   atomic.Pointer[issuerSet]
	setMu sync.Mutex // serialises SetIssuers; guards index
	// index numbers each issuer key ever served, by its SHA-1 CertID
	// name, for the cache keys: an issuer keeps its number across
	// renewals, removal and re-addition, so its cached responses stay
	// its own and Invalidate reaches all of them.
	index    map[issuerName]int
	source   Source
	validity time.Duration
	maxAge   time.Duration
	// goodMaxAge is Config.GoodMaxAge; nil: maxAge.
	goodMaxAge *time.Duration
	timeout    time.Duration
	path       string
	now        func() time.Time
	log        *slog.Logger
	metrics    *metrics
	cache      *cache  // nil: no cache
	budget     *budget // nil: unlimited
	// responses holds the pre-signed responses; nil: none.
	responses ResponseStore
	// presigner, once made, is woken by Invalidate: a status changed.
	presigner atomic.Pointer[Presigner]
	// unknownReuse is how long a cached unknown answer is served.
	unknownReuse time.Duration
}

var _ http.Handler = (*Responder)(nil)

// errUnauthorized: a CertID names an issuer the responder does not serve.
var errUnauthorized = errors.New("ocsp: issuer not served here")

// New checks cfg and makes a Responder.
func New(cfg Config) (*Responder, error) {
	r := &Responder{
		source:   cfg.Source,
		validity: cfg.Validity,
		maxAge:   cfg.MaxAge,
		timeout:  cfg.Timeout,

		goodMaxAge: cfg.GoodMaxAge,
		path:       cfg.Path,
		now:        cfg.Now,
		log:        cfg.Log,

		unknownReuse: cfg.UnknownReuse,
		index:        map[issuerName]int{},
		responses:    cfg.Presigned,
	}
	if r.source == nil {
		return nil, errors.New("ocsp: Config.Source is required")
	}
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("ocsp: Config.Issuers is empty")
	}
	if r.validity == 0 {
		r.validity = DefaultValidity
	}
	if r.validity < time.Minute {
		return nil, fmt.Errorf("ocsp: Config.Validity %v is less than a minute", r.validity)
	}
	if r.maxAge < 0 {
		return nil, fmt.Errorf("ocsp: Config.MaxAge %v is negative", r.maxAge)
	}
	if g := r.goodMaxAge; g != nil {
		if err := CheckGoodMaxAge(*g, r.validity); err != nil {
			return nil, fmt.Errorf("ocsp: Config.GoodMaxAge: %w", err)
		}
	}
	if r.timeout == 0 {
		r.timeout = DefaultTimeout
	}
	if r.timeout < 0 {
		return nil, fmt.Errorf("ocsp: Config.Timeout %v is negative", r.timeout)
	}
	switch {
	case r.path == "":
		r.path = DefaultPath
	case r.path == "/":
		r.path = ""
	case !strings.HasPrefix(r.path, "/") || strings.HasSuffix(r.path, "/"):
		return nil, fmt.Errorf("ocsp: Config.Path %q must start with / and not end with one", r.path)
	}
	if r.now == nil {
		r.now = time.Now
	}
	switch {
	case r.unknownReuse == 0:
		r.unknownReuse = DefaultUnknownReuse
	case r.unknownReuse < 0:
		return nil, fmt.Errorf("ocsp: Config.UnknownReuse %v is negative", r.unknownReuse)
	}
	r.unknownReuse = min(r.unknownReuse, r.validity/2)
	b, err := newBudget(cfg.SignatureBudget, cfg.SignatureBurst, r.now())
	if err != nil {
		return nil, err
	}
	r.budget = b
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		r.cache = newCache(size)
	}
	set, err := r.newIssuerSet(cfg.Issuers, "Config.Issuers", nil)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics, r.cache)
	if err != nil {
		return nil, fmt.Errorf("ocsp: metrics: %w", err)
	}
	r.metrics = m
	r.set.Store(set)
	set.report(m, nil)
	return r, nil
}

// issuerSet is the issuers answered for, swapped whole by SetIssuers.
type issuerSet struct {
	issuers []*issuer
	byName  map[issuerName]*issuer
	// byCert finds an issuer by its certificate's DER (Presigner).
	byCert map[string]*issuer
}

// newIssuerSet checks issuers (field names them in errors) and makes
// their set, numbering issuers never served before; old is the set it
// replaces (nil at first), whose responder certificates it keeps as
// earlier ones of the same key (keepEarlier). r.setMu is held, or r is not
// yet shared.
func (r *Responder) newIssuerSet(issuers []*Issuer, field string, old *issuerSet) (*issuerSet, error) {
	if len(issuers) == 0 {
		return nil, fmt.Errorf("ocsp: %s is empty", field)
	}
	now := r.now()
	set := &issuerSet{byName: map[issuerName]*issuer{}, byCert: map[string]*issuer{}}
	at := map[*issuer]int{}
	for i, is := range issuers {
		in, err := newIssuer(is, now)
		if err != nil {
			return nil, fmt.Errorf("ocsp: %s[%d]: %w", field, i, err)
		}
		for _, name := range in.names {
			if other, ok := set.byName[name]; ok {
				return nil, fmt.Errorf("ocsp: %s[%d] is the same issuer key as %s[%d]", field, i, field, at[other])
			}
			set.byName[name] = in
		}
		at[in] = i
		set.issuers = append(set.issuers, in)
		set.byCert[string(in.Certificate.Raw)] = in
	}
	if old != nil {
		for _, in := range set.issuers {
			in.keepEarlier(old.byName[in.names[0]], now)
		}
	}
	// Numbers are given only once the whole set is accepted: a refused
	// set leaves no trace.
	for _, in := range set.issuers {
		n, ok := r.index[in.names[0]]
		if !ok {
			n = len(r.index)
			r.index[in.names[0]] = n
		}
		in.index = n
	}
	if r.cache != nil {
		// Before the set is published: a request can use the number only
		// after Invalidate covers it.
		r.cache.serve(len(r.index))
	}
	return set, nil
}

// report sets the responder metrics of the set's issuers and drops those
// of the issuers of old (the set replaced, or nil) no longer served.
func (set *issuerSet) report(m *metrics, old *issuerSet) {
	for _, is := range set.issuers {
		m.responderNotAfter.WithLabelValues(is.keyID).Set(float64(is.Responder.NotAfter.Unix()))
	}
	if old == nil {
		return
	}
	for _, is := range old.issuers {
		if set.byName[is.names[0]] == nil {
			m.responderNotAfter.DeleteLabelValues(is.keyID)
		}
	}
}

// SetIssuers replaces the issuer key generations answered for and their
// delegated responders, atomically: a renewed responder certificate
// (R-R6), a generation added by a rotation, one removed because it signs
// nothing any more (R-K1). issuers is the whole new set, in any order, at
// least one. Requests arriving after it returns are answered with the new
// set; requests in flight finish with the set they started with. Cached
// responses of the generations kept stay cached: each was signed by a
// responder certificate valid past its nextUpdate. A generation removed is
// answered unauthorized, and its metric labels are dropped. A refused set
// changes nothing.
func (r *Responder) SetIssuers(issuers []*Issuer) error {
	r.setMu.Lock()
	defer r.setMu.Unlock()
	set, err := r.newIssuerSet(issuers, "SetIssuers: issuers", r.set.Load())
	if err != nil {
		return err
	}
	old := r.set.Swap(set)
	set.report(r.metrics, old)
	return nil
}

// Issuers returns the issuer key generations answered for now.
func (r *Responder) Issuers() []*Issuer {
	set := r.set.Load()
	out := make([]*Issuer, len(set.issuers))
	for i, is := range set.issuers {
		out[i] = is.Issuer
	}
	return out
}

// Invalidate drops the cached responses of serial, for every issuer and
// CertID hash, so that the next request is answered from the Source. Call
// it the moment the serial's status changes (R-R4); a response being made
// from a status read before the call is served to the requests already
// waiting for it but not cached. It also wakes the Responder's Presigner,
// which then signs the new status's response.
func (r *Responder) Invalidate(serial *big.Int) {
	if r.cache != nil {
		r.cache.invalidate(serial)
	}
	if p := r.presigner.Load(); p != nil {
		p.Notify()
	}
}

// answer makes the response to a parsed request at now. Its errors wrap
// ErrMalformed, errUnauthorized, or anything else for internalError.
func (r *Responder) answer(ctx context.Context, req *Request, now time.Time) (*response, error) {
	if len(req.CertIDs) > maxCertIDs {
		return nil, malformed("tbsRequest.requestList", "%d CertIDs; at most %d are answered", len(req.CertIDs), maxCertIDs)
	}
	// One set for the whole request: SetIssuers may swap it meanwhile.
	set := r.set.Load()
	var is *issuer
	for i, id := range req.CertIDs {
		this := set.byName[issuerKey(id.HashAlgorithm, id.IssuerNameHash, id.IssuerKeyHash)]
		if this == nil {
			return nil, fmt.Errorf("%w: requestList[%d] names another issuer", errUnauthorized, i)
		}
		if is != nil && this != is {
			// One response has one signer, and a delegated
			// responder speaks for its own issuer only.
			return nil, fmt.Errorf("%w: requestList[%d] names issuer %s, requestList[0] issuer %s", errUnauthorized, i, this.keyID, is.keyID)
		}
		is = this
	}
	// Only one-CertID, nonce-less requests share responses.
	var k cacheKey
	shareable := false
	if r.cache != nil && len(req.CertIDs) == 1 {
		k, shareable = r.cache.key(is, req.CertIDs[0])
	}
	if req.Nonce != nil || !shareable {
		// A fresh signature, made for this request alone: within the
		// budget.
		ok, wait := r.budget.take(now)
		if ok {
			ctx, cancel := context.WithTimeout(ctx, r.timeout)
			defer cancel()
			return r.produce(ctx, is, req.CertIDs, req.Nonce, true)
		}
		if !shareable {
			r.metrics.tryLater.Inc()
			return nil, tryLaterError{wait}
		}
		// RFC 5019 §4 and RFC 8954 let a responder leave the nonce out: the
		// client gets the response everyone gets, signed at most once
		// per half validity.
		r.metrics.withoutNonce.Inc()
	}
	if resp := r.cache.get(k, now); resp != nil {
		r.metrics.cacheHits.Inc()
		return resp, nil
	}
	presigned := false
	resp, shared, err := r.cache.do(ctx, k, now, func() (*response, error) {
		// A pre-signed response costs no signature (presigned.go); it
		// is cached only when asked for again soon (admit.go).
		if resp := r.presigned(is, req.CertIDs[0], now); resp != nil {
			presigned = true
			resp.reusable = r.cache.door.admit(k)
			return resp, nil
		}
		// The response may be shared by other requests: the one making
		// it going away must not fail them.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		return r.produce(ctx, is, req.CertIDs, nil, false)
	})
	switch {
	case shared:
		r.metrics.cacheHits.Inc()
	case presigned:
		r.metrics.presignedHits.Inc()
	default:
		r.metrics.cacheMisses.Inc()
	}
	return resp, err
}

// produce asks the Source for each CertID's status and signs the response.
// budgeted says the signature was taken from the budget already; if not,
// an unknown status takes it (a caller can name any number of serials
// never issued), and without one the answer is tryLater.
func (r *Responder) produce(ctx context.Context, is *issuer, ids []CertID, nonce []byte, budgeted bool) (*response, error) {
	now := r.now().UTC().Truncate(time.Second)
	rc := is.Responder
	if now.Before(rc.NotBefore) || !now.Before(rc.NotAfter) {
		return nil, fmt.Errorf("the delegated responder certificate of issuer %s is valid from %s to %s, not now", is.keyID, rfc3339(rc.NotBefore), rfc3339(rc.NotAfter))
	}
	singles := make([]single, len(ids))
	for i, id := range ids {
		st, err := r.source.Status(ctx, is.Issuer, id.SerialNumber)
		if err != nil {
			return nil, fmt.Errorf("status of serial %x: %w", id.SerialNumber, err)
		}
		if singles[i], err = r.single(rc, id.raw, st, now); err != nil {
			return nil, fmt.Errorf("status of serial %x: %w", id.SerialNumber, err)
		}
		if st.Status == Unknown && !budgeted {
			ok, wait := r.budget.take(r.now())
			if !ok {
				r.metrics.tryLater.Inc()
				return nil, tryLaterError{wait}
			}
			budgeted = true
		}
	}
	start := time.Now()
	resp, err := is.sign(ctx, now, singles, nonce)
	r.metrics.signing.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	// Serve it from the cache for half its validity: every response sent
	// has at least half its validity left. An unknown answer is kept
	// only UnknownReuse: issuance does not invalidate.
	resp.reuseUntil = servedUntil(resp.thisUpdate, resp.nextUpdate)
	if slices.Contains(resp.statuses, Unknown) {
		resp.reuseUntil = resp.thisUpdate.Add(r.unknownReuse)
	}
	resp.reusable = nonce == nil
	return resp, nil
}

// single is the SingleResponse of certID with status st, signed at now by
// the responder certificate rc: thisUpdate is the status's ThisUpdate
// (now when zero or ahead of now), refused when more than half the
// validity old; nextUpdate is thisUpdate plus the validity, never past
// rc's notAfter.
func (r *Responder) single(rc *x509.Certificate, certID []byte, st Status, now time.Time) (single, error) {
	if err := st.check(); err != nil {
		return single{}, err
	}
	this := st.ThisUpdate.UTC().Truncate(time.Second)
	if st.ThisUpdate.IsZero() || this.After(now) {
		this = now
	}
	if age := now.Sub(this); age > r.validity/2 {
		return single{}, fmt.Errorf("the status is %v old; more than half the validity %v", age, r.validity)
	}
	next := this.Add(r.validity)
	if next.After(rc.NotAfter) {
		next = rc.NotAfter.UTC()
	}
	return single{certID: certID, status: st, thisUpdate: this, nextUpdate: next}, nil
}
