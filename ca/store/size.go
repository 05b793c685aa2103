package store

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Size is how many bytes the store takes on its engine (engine.DB.Size):
// the bbolt file, or the PostgreSQL tables of its schema.
func (s *Store) Size(ctx context.Context) (int64, error) {
	return s.db.Size(ctx)
}

// SizeRefresh is how long shomei_store_size_bytes keeps a size before it
// asks the engine again: a scrape never costs a query more often.
const SizeRefresh = 30 * time.Second

// sizeQueryTimeout bounds one size query made for a scrape.
const sizeQueryTimeout = 5 * time.Second

// RegisterSizeMetric exports shomei_store_size_bytes to reg: the store's
// Size, asked at a scrape at most every SizeRefresh. A failed query keeps
// the last size (and is asked again at the next scrape); before the first
// success the metric is absent.
func (s *Store) RegisterSizeMetric(reg prometheus.Registerer) error {
	return reg.Register(&sizeCollector{s: s, now: time.Now,
		desc: prometheus.NewDesc("shomei_store_size_bytes",
			"Bytes the CA store takes: the bbolt file, or the PostgreSQL tables of its schema (refreshed at most every 30 s).",
			[]string{"driver"}, nil)})
}

type sizeCollector struct {
	s    *Store
	now  func() time.Time
	desc *prometheus.Desc

	mu     sync.Mutex
	size   int64
	asked  time.Time
	hasOne bool
}

func (c *sizeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *sizeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); !c.hasOne || now.Sub(c.asked) >= SizeRefresh {
		ctx, cancel := context.WithTimeout(context.Background(), sizeQueryTimeout)
		n, err := c.s.Size(ctx)
		cancel()
		if err == nil {
			c.size, c.asked, c.hasOne = n, now, true
		}
	}
	if c.hasOne {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.size), c.s.Driver())
	}
}
