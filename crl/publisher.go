package crl

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"math/bits"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

// Source is what the publisher needs of the store.
type Source interface {
	Partitions() ([]*storev1.CRLPartition, error)
	// PartitionRevocations calls fn for each revoked certificate of a
	// partition that has not expired at now, with its CRL entry's serial
	// (valid only during the call), revocationDate, reason and
	// invalidityDate (zero when none), and returns the status-change
	// revision they reflect.
	PartitionRevocations(name string, now time.Time, fn func(serial []byte, revokedAt time.Time, reason int32, invalidityDate time.Time) error) (uint64, error)
	SaveCRL(name string, number uint64, thisUpdate, nextUpdate time.Time, revision uint64, der []byte) error
	CRL(name string) ([]byte, error)
}

// Issuers returns the certificate and signing key of an issuer key
// generation; older generations keep signing the CRLs of their own
// certificates (R-K1).
type Issuers func(p storev1.Profile, generation uint32) (*x509.Certificate, crypto.Signer, error)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	Source  Source
	Issuers Issuers
	// Validity is nextUpdate - thisUpdate; 24 h when zero (R-R5).
	Validity time.Duration
	// Renew republishes a CRL this long before its nextUpdate even without
	// changes; Validity/4 when zero.
	Renew time.Duration
	// Poll is how often the partitions are looked at when nothing calls
	// Notify; 5 s when zero. Changes show within Poll (R-R4: 60 s).
	Poll time.Duration
	Now  func() time.Time
	Log  *slog.Logger
	// Published, if set, is told each partition published and the revision
	// it reflects (for the freshness metric, R-R4).
	Published func(partition string, revision uint64, at time.Time)
	// Metrics, if set, gets shomei_crl_entries_skipped_total and the
	// per-partition metrics of metrics.go.
	Metrics prometheus.Registerer
	// StaleAfter is how long a partition may stay unpublished while due
	// (changed, or near its nextUpdate) before Health reports it: R-R4's
	// 60 s when zero.
	StaleAfter time.Duration
	// Workers is how many due partitions are built at once (a start with
	// every CRL due, nextUpdate renewals, a burst of revocations across
	// shards). Each holds its partition's entries and CRL while it works,
	// about three times the CRL's size, and signs with the issuer key
	// (the HSM's session pool bounds those). 1 to MaxWorkers;
	// GOMAXPROCS, at most DefaultMaxWorkers, when zero.
	Workers int
}

// DefaultMaxWorkers caps the Workers a Publisher takes by default;
// MaxWorkers is the most it takes.
const (
	DefaultMaxWorkers = 8
	MaxWorkers        = 64
)

// Publisher keeps every partition's CRL current and serves it over HTTP.
// Only partitions that changed since their last CRL (or near their
// nextUpdate) are rebuilt (R-R5).
type Publisher struct {
	cfg    PublisherConfig
	notify chan struct{}

	mu     sync.RWMutex
	latest map[string]*published

	health  health
	skipped *prometheus.CounterVec
	metrics *metrics
	// retired are the issuer key generations not published (SetRetired).
	retired atomic.Pointer[map[Generation]bool]
	// following: another process publishes; this one serves what that one
	// stored (SetFollowing).
	following atomic.Bool
}

type published struct {
	url                    string // as in the certificates
	number                 uint64
	der                    []byte
	thisUpdate, nextUpdate time.Time
	etag                   string
	entries                int // how many
	// publishedAt is when this process stored it, or its thisUpdate when
	// loaded from the store; built how long building it took here (0 when
	// loaded).
	publishedAt time.Time
	built       time.Duration
}

// NewPublisher checks cfg and loads the CRLs published before.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Source == nil || cfg.Issuers == nil {
		return nil, errors.New("crl: a source and issuers are required")
	}
	if cfg.Validity == 0 {
		cfg.Validity = 24 * time.Hour
	}
	if cfg.Renew == 0 {
		cfg.Renew = cfg.Validity / 4
	}
	if cfg.Poll == 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = time.Minute
	}
	switch {
	case cfg.Workers == 0:
		cfg.Workers = min(runtime.GOMAXPROCS(0), DefaultMaxWorkers)
	case cfg.Workers < 0 || cfg.Workers > MaxWorkers:
		return nil, fmt.Errorf("crl: PublisherConfig.Workers %d: 1 to %d partitions built at once (0: GOMAXPROCS, at most %d)", cfg.Workers, MaxWorkers, DefaultMaxWorkers)
	}
	p := &Publisher{cfg: cfg, notify: make(chan struct{}, 1), latest: map[string]*published{}}
	p.health.init()
	p.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shomei_crl_entries_skipped_total",
		Help: "Revoked certificates left off their partition's CRL because their entry cannot be encoded (see the log and /readyz)."},
		[]string{"partition"})
	p.metrics = newMetrics(p)
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(p.skipped); err != nil {
			return nil, fmt.Errorf("crl: metrics: %w", err)
		}
		if err := p.metrics.register(cfg.Metrics); err != nil {
			return nil, err
		}
	}
	parts, err := cfg.Source.Partitions()
	if err != nil {
		return nil, err
	}
	if err := p.load(parts); err != nil {
		return nil, err
	}
	return p, nil
}

// load takes the stored CRLs of parts newer than those served.
func (p *Publisher) load(parts []*storev1.CRLPartition) error {
	for _, part := range parts {
		p.mu.RLock()
		last := p.latest[part.Name]
		p.mu.RUnlock()
		if part.Number == 0 || (last != nil && last.number >= part.Number) {
			continue
		}
		der, err := p.cfg.Source.CRL(part.Name)
		if err != nil {
			return err
		}
		if len(der) > 0 {
			p.serve(part, newPublished(part.Number, der, part.ThisUpdate.AsTime(), part.NextUpdate.AsTime(), entryCount(der)), 0)
		}
	}
	return nil
}

// serve makes pub the CRL served for part, with skipped entries left off
// it: the partition's URL, its failures series (it exists from the first
// CRL) and its health.
func (p *Publisher) serve(part *storev1.CRLPartition, pub *published, skipped int) {
	pub.url = part.Url
	p.metrics.failures.WithLabelValues(part.Name)
	p.mu.Lock()
	p.latest[part.Name] = pub
	p.mu.Unlock()
	p.health.published(part.Name, pub.nextUpdate, skipped)
}

func newPublished(number uint64, der []byte, thisUpdate, nextUpdate time.Time, entries int) *published {
	return &published{number: number, der: der, thisUpdate: thisUpdate, nextUpdate: nextUpdate, etag: etagOf(der), entries: entries,
		publishedAt: thisUpdate}
}

// etagOf is the ETag of a CRL: the SHA-256 of its signature value, which
// differs with every CRL as its contents do, rather than of its 7 MB
// (100,000 entries); the SHA-256 of the whole DER when the signature
// cannot be found (nothing this package builds).
func etagOf(der []byte) string {
	in := cryptobyte.String(der)
	var list cryptobyte.String
	var sig asn1.BitString
	var sum [sha256.Size]byte
	if in.ReadASN1(&list, cbasn1.SEQUENCE) && list.SkipASN1(cbasn1.SEQUENCE) && list.SkipASN1(cbasn1.SEQUENCE) && list.ReadASN1BitString(&sig) && len(sig.Bytes) > 0 {
		sum = sha256.Sum256(sig.Bytes)
	} else {
		sum = sha256.Sum256(der)
	}
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// SetFollowing makes the publisher a follower (true) or the publisher
// (false, the default). Several CA processes share a PostgreSQL store and
// one of them, the leader, publishes (cmd/shomei-ca leads through the
// store's lease); a follower signs nothing and serves the CRLs the leader
// stored, read on every poll and Notify. Which one signed a CRL, its
// number is the stored number plus one and SaveCRL refuses a number not
// above the stored one, so a number is never used twice even when a lost
// leader has not noticed yet.
func (p *Publisher) SetFollowing(following bool) {
	if p.following.Swap(following) != following {
		p.Notify()
	}
}

// Notify asks for the changed partitions to be published now.
func (p *Publisher) Notify() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Run publishes due partitions until ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	tick := time.NewTicker(p.cfg.Poll)
	defer tick.Stop()
	for {
		if p.following.Load() {
			if err := p.Follow(); err != nil {
				p.cfg.Log.Error("reading the CRLs the leader published", "error", err)
			}
		} else if err := p.PublishDue(ctx); err != nil {
			p.cfg.Log.Error("publishing CRLs", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-p.notify:
		}
	}
}

// Follow serves the CRLs stored since it last looked (a follower's poll).
func (p *Publisher) Follow() error {
	parts, err := p.cfg.Source.Partitions()
	if err != nil {
		return err
	}
	return p.load(parts)
}

// PublishDue publishes every partition that was never published, changed
// since its last CRL, or is close to its nextUpdate, Workers at a time.
// Each partition is published on its own: one that fails does not stop
// the others, and the errors are joined in partition order.
func (p *Publisher) PublishDue(ctx context.Context) error {
	parts, err := p.cfg.Source.Partitions()
	if err != nil {
		return err
	}
	now := p.cfg.Now()
	var due []*storev1.CRLPartition
	for _, part := range parts {
		if p.isRetired(part) {
			p.health.forget(part.Name)
			continue
		}
		if part.Number == 0 || part.ChangedRevision > part.Revision || !now.Before(part.NextUpdate.AsTime().Add(-p.cfg.Renew)) {
			due = append(due, part)
		}
	}
	failed := make([]error, len(due))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(p.cfg.Workers, len(due)) {
		wg.Go(func() {
			for i := range jobs {
				if err := p.publish(due[i], now); err != nil {
					failed[i] = fmt.Errorf("partition %s: %w", due[i].Name, err)
					p.health.failed(due[i].Name, now, err)
					p.metrics.failures.WithLabelValues(due[i].Name).Inc()
				}
			}
		})
	}
	for i := range due {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return errors.Join(failed...)
}

func (p *Publisher) publish(part *storev1.CRLPartition, now time.Time) error {
	start := time.Now()
	issuer, signer, err := p.cfg.Issuers(part.Profile, part.IssuerGeneration)
	if err != nil {
		return err
	}
	name, err := x509enc.ParseDN(part.DistributionPoint)
	if err != nil {
		return err
	}
	req := Request{
		Partition: Partition{Name: part.Name, URL: part.Url, DistributionPoint: name},
		Issuer:    issuer, Signer: signer,
		Number: new(big.Int).SetUint64(part.Number + 1),
	}
	// The entries are held through Build and Check, so they are kept
	// small: sized from the last CRL of the partition (plus room for the
	// revocations since) rather than grown step by step (which allocates
	// about five times the final slice), and their serials made from
	// chunks rather than allocated one by one.
	p.mu.RLock()
	if last := p.latest[part.Name]; last != nil {
		req.Entries = make([]Entry, 0, last.entries+last.entries/8)
	}
	p.mu.RUnlock()
	var serials serialArena
	rev, err := p.cfg.Source.PartitionRevocations(part.Name, now, func(serial []byte, revokedAt time.Time, reason int32, invalidityDate time.Time) error {
		req.Entries = append(req.Entries, Entry{Serial: serials.new(serial), RevokedAt: revokedAt, Reason: int(reason), InvalidityDate: invalidityDate})
		return nil
	})
	if err != nil {
		return err
	}
	// thisUpdate after the entries were read: every revocation the CRL
	// lists was recorded before it.
	req.ThisUpdate = p.cfg.Now()
	req.NextUpdate = req.ThisUpdate.Add(p.cfg.Validity)
	// Build and Check of one prepared request: the entries are validated
	// and sorted once. One entry that cannot be encoded (stored before the
	// API checked effective times, say) must not keep the partition's
	// other revocations off its CRL: when the request is refused, the
	// entries with a problem are left out and reported, and the rest is
	// prepared again.
	skipped := 0
	pl, err := prepare(req, true)
	if err != nil {
		if skipped = p.dropBadEntries(part.Name, &req); skipped == 0 {
			return err
		}
		if pl, err = prepare(req, true); err != nil {
			return err
		}
	}
	der, err := build(req, pl)
	if err != nil {
		return err
	}
	if err := check(der, req, pl); err != nil {
		return fmt.Errorf("the signed CRL fails its check: %w", err)
	}
	if err := p.cfg.Source.SaveCRL(part.Name, part.Number+1, req.ThisUpdate, req.NextUpdate, rev, der); err != nil {
		return err
	}
	pub := newPublished(part.Number+1, der, req.ThisUpdate, req.NextUpdate, len(req.Entries))
	pub.publishedAt, pub.built = p.cfg.Now(), time.Since(start)
	p.serve(part, pub, skipped)
	p.cfg.Log.Info("CRL published", "partition", part.Name, "number", part.Number+1, "entries", len(req.Entries), "revision", rev)
	if p.cfg.Published != nil {
		p.cfg.Published(part.Name, rev, p.cfg.Now())
	}
	return nil
}

// entryCount is the number of entries of a CRL, 0 if it cannot be read:
// the size of the next request of its partition.
func entryCount(der []byte) int {
	v, why := readCRL(der, func(string, string, ...any) {})
	if why != "" {
		return 0
	}
	n := 0
	for in := v.revoked; in.SkipASN1(cbasn1.SEQUENCE); {
		n++
	}
	return n
}

// serialArena makes the *big.Int serials of a partition's entries from
// chunks of big.Ints and of words: a million entries would otherwise be
// two million small allocations for the garbage collector to track. The
// chunks live as long as any serial made from them, which is as long as
// the request.
type serialArena struct {
	ints  []big.Int
	words []big.Word
}

const (
	arenaChunk = 4096              // serials per chunk of big.Ints
	wordBytes  = bits.UintSize / 8 // octets per big.Word
	chunkWords = 2 * arenaChunk    // two words a serial: R-P1's 16 octets on 64-bit
)

// new returns the serial of the big-endian octets b.
func (a *serialArena) new(b []byte) *big.Int {
	if len(a.ints) == 0 {
		a.ints = make([]big.Int, arenaChunk)
	}
	z := &a.ints[0]
	a.ints = a.ints[1:]
	n := (len(b) + wordBytes - 1) / wordBytes
	if len(a.words) < n {
		a.words = make([]big.Word, max(n, chunkWords))
	}
	w := a.words[:n:n] // zero: never handed out before
	a.words = a.words[n:]
	for i, c := range b {
		at := len(b) - 1 - i // octets from the least significant end
		w[at/wordBytes] |= big.Word(c) << (8 * (at % wordBytes))
	}
	return z.SetBits(w) // takes w as it is, without copying
}

// PublishedCRL describes the CRL a partition serves: what a relying
// party's index of the CRLs shows (the repository page).
type PublishedCRL struct {
	// Name is the partition's name; its CRL is served as <Name>.crl.
	Name string
	// URL is the partition's URL as its certificates' cRLDistributionPoints
	// write it.
	URL                    string
	Number                 uint64
	ThisUpdate, NextUpdate time.Time
	// Entries is how many revoked certificates it lists, Bytes its DER size.
	Entries, Bytes int
}

// Published lists the CRLs served, one per partition, ordered by name.
// It reads only what the publisher holds in memory: never the store.
func (p *Publisher) Published() []PublishedCRL {
	p.mu.RLock()
	out := make([]PublishedCRL, 0, len(p.latest))
	for name, pub := range p.latest {
		out = append(out, PublishedCRL{Name: name, URL: pub.url, Number: pub.number, ThisUpdate: pub.thisUpdate, NextUpdate: pub.nextUpdate,
			Entries: pub.entries, Bytes: len(pub.der)})
	}
	p.mu.RUnlock()
	slices.SortFunc(out, func(a, b PublishedCRL) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ServeHTTP serves GET <prefix>/<partition>.crl: the latest CRL, DER, with
// caching headers that keep caches from holding it past its nextUpdate or
// longer than a minute.
func (p *Publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	base := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	name, ok := strings.CutSuffix(base, ".crl")
	p.mu.RLock()
	pub := p.latest[name]
	p.mu.RUnlock()
	if !ok || pub == nil {
		http.Error(w, "no such CRL partition", http.StatusNotFound)
		return
	}
	maxAge := min(time.Until(pub.nextUpdate), time.Minute)
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("ETag", pub.etag)
	w.Header().Set("Last-Modified", pub.thisUpdate.UTC().Format(http.TimeFormat))
	w.Header().Set("Expires", pub.nextUpdate.UTC().Format(http.TimeFormat))
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d, no-transform", int(max(maxAge, 0).Seconds())))
	if r.Header.Get("If-None-Match") == pub.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(pub.der)
}
