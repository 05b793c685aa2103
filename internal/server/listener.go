package server

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count each listener's connections.
type metrics struct {
	refused *prometheus.CounterVec
	open    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shomei_server_connections_refused_total",
		Help: "Connections accepted and closed at once because the listener had its maximum open (server.*_limits.max_connections).",
	}, []string{"listener"})
	open := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "shomei_server_connections_open",
		Help: "Connections open on the listener.",
	}, []string{"listener"})
	if reg != nil {
		var err error
		if refused, err = register(reg, refused); err != nil {
			return nil, err
		}
		if open, err = register(reg, open); err != nil {
			return nil, err
		}
	}
	return &metrics{refused: refused, open: open}, nil
}

// register registers c, or returns the collector already registered
// under its name (a second Run on the same registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// limitListener caps the connections open at once, in all and, when
// perAddr > 0, from one client IP address. A connection over a cap is
// accepted and closed at once with a reset (no TLS, HTTP or HTTP/2 work,
// no TIME_WAIT kept here), and counted; the listener keeps accepting, so
// the backlog never fills with connections it will not serve.
type limitListener struct {
	net.Listener
	max     int64
	n       atomic.Int64
	perAddr int
	mu      sync.Mutex
	byAddr  map[netip.Addr]int // only when perAddr > 0
	refused prometheus.Counter
	open    prometheus.Gauge
}

func newLimitListener(l net.Listener, max, perAddr int, name string, m *metrics) *limitListener {
	ll := &limitListener{Listener: l, max: int64(max), perAddr: perAddr,
		refused: m.refused.WithLabelValues(name), open: m.open.WithLabelValues(name)}
	if perAddr > 0 {
		ll.byAddr = map[netip.Addr]int{}
	}
	return ll
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.n.Add(1) > l.max {
			l.n.Add(-1)
			l.refuse(c)
			continue
		}
		addr, ok := l.take(c)
		if !ok {
			l.n.Add(-1)
			l.refuse(c)
			continue
		}
		l.open.Inc()
		return &limitConn{Conn: c, l: l, addr: addr}, nil
	}
}

// refuse counts c and resets it.
func (l *limitListener) refuse(c net.Conn) {
	l.refused.Inc()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// take counts c against its address's cap; false when the address has
// its maximum open.
func (l *limitListener) take(c net.Conn) (netip.Addr, bool) {
	if l.byAddr == nil {
		return netip.Addr{}, true
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}, true // not TCP/IP: no address to count
	}
	a := ap.Addr().Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr[a] >= l.perAddr {
		return a, false
	}
	l.byAddr[a]++
	return a, true
}

// release gives back a connection's place.
func (l *limitListener) release(a netip.Addr) {
	l.n.Add(-1)
	l.open.Dec()
	if l.byAddr == nil || !a.IsValid() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr[a] <= 1 {
		delete(l.byAddr, a)
	} else {
		l.byAddr[a]--
	}
}

// limitConn gives its place back once, when closed.
type limitConn struct {
	net.Conn
	l    *limitListener
	addr netip.Addr
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}
