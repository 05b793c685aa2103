package server

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// HTTPLimits bound what one HTTP client can hold (issue 9, item 3). The
// zero value of a field means its default.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers, from the
	// moment the connection is accepted or the previous response ended;
	// default 5s. A connection that sends nothing is closed after it.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included; default
	// 10s. OCSP POST bodies are a few hundred bytes (ocsp's limit is
	// 10 KiB), so a slow body is cut after it.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds each 64 KiB of a response, not the whole
	// response: a client must keep reading, at 64 KiB per WriteTimeout
	// or faster (≈2 KiB/s with the default), but a large CRL (a
	// 1M-entry partition is tens of MB) is never cut on a link that
	// makes progress. Default 30s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxResponseTime bounds a whole response however it progresses,
	// so that a reader at the slowest rate WriteTimeout allows cannot
	// hold a connection for hours; default 10m (a 40 MB CRL at 1 Mbit/s
	// takes about 5 minutes).
	MaxResponseTime time.Duration `yaml:"max_response_time"`
	// IdleTimeout closes a kept-alive connection with no request for
	// this long; default 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// StopGrace is how long a stop waits for the HTTP requests in flight
	// before it closes their connections (within the shutdown timeout);
	// default 1s, at most 1m. A status answer takes milliseconds: what
	// is still in flight after it is a caller that reads or sends
	// slowly (a body that stops, a response nobody reads, a large CRL on
	// a slow link), who asks again, of another replica. Waiting for such
	// callers let anyone make every stop last the read timeout or the
	// shutdown timeout (issue 13).
	StopGrace time.Duration `yaml:"stop_grace"`
	// MaxHeaderBytes bounds request headers; default 16 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConnections caps the listener's open connections; excess
	// connections are accepted and closed at once, before any HTTP work.
	// Default 4096: each open connection costs the CA about 30 KiB
	// (goroutine, buffers), and the collector (GOGC 400, gctuning) lets
	// the heap grow to several times that; under the hostile benchmark
	// (20,000 connections held) 4096 kept the CA's peak RSS near 350 MiB
	// where 8192 passed 500 MiB. Relying parties keep connections short
	// or behind a proxy. Lowered at start if the file-descriptor limit
	// cannot hold both listeners' caps (FitToFileLimit).
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerAddress caps the connections open from one client
	// IP address, refused like those over MaxConnections, so that one
	// host cannot fill the listener; 0 (the default): no cap per address,
	// as relying parties behind a NAT or proxy share one.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
}

// Bounds of HTTPLimits.StopGrace.
const (
	DefaultStopGrace = time.Second
	MaxStopGrace     = time.Minute
)

// GRPCLimits bound what one gRPC client can hold. The zero value of a
// field means its default.
type GRPCLimits struct {
	// MaxConnections caps the listener's open connections, refused like
	// HTTP's; default 1024. Municipal systems and replicas are few; the
	// cap is separate from HTTP's so that a flood of public HTTP
	// connections never takes the gRPC listener's room.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerAddress caps the connections from one client IP
	// address; 0 (the default): none.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// MaxConcurrentStreams caps the calls in flight on one connection;
	// default 64.
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams"`
	// MaxRecvMsgSize caps a received message, checked before it is
	// unmarshalled; default DefaultMaxRecvMsgSize.
	MaxRecvMsgSize int `yaml:"max_recv_msg_size"`
	// ConnectionTimeout bounds the connection handshake (TLS and the
	// HTTP/2 preface); default 10s.
	ConnectionTimeout time.Duration `yaml:"connection_timeout"`
	// MaxConnectionIdle closes a connection with no call for this long
	// (with a GOAWAY; clients reconnect when they need to); default 5m.
	MaxConnectionIdle time.Duration `yaml:"max_connection_idle"`
	// KeepaliveTime: the server pings a connection quiet for this long;
	// default 1m. KeepaliveTimeout: it is closed if the ping is not
	// answered within this; default 20s.
	KeepaliveTime time.Duration `yaml:"keepalive_time"`
	// KeepaliveTimeout: see keepalive_time; default 20s.
	KeepaliveTimeout time.Duration `yaml:"keepalive_timeout"`
	// KeepaliveMinTime is the shortest interval between a client's
	// pings; a client pinging more often is sent GOAWAY
	// (keepalive.EnforcementPolicy). Default 30s; pings without a call
	// in flight are refused too.
	KeepaliveMinTime time.Duration `yaml:"keepalive_min_time"`
}

// DefaultMaxRecvMsgSize is the default gRPC receive limit: 64 KiB, far
// above the largest valid request (two CSRs with RSA-4096 keys and the
// longest names the rule book allows are a few KiB) and far below what
// a caller could make the CA allocate otherwise (4 MiB, gRPC's default).
const DefaultMaxRecvMsgSize = 64 << 10

func (l *HTTPLimits) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, 5*time.Second)
	def(&l.ReadTimeout, 10*time.Second)
	def(&l.WriteTimeout, 30*time.Second)
	def(&l.MaxResponseTime, 10*time.Minute)
	def(&l.IdleTimeout, 60*time.Second)
	def(&l.StopGrace, DefaultStopGrace)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = 16 << 10
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = 4096
	}
}

func (l *GRPCLimits) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = 1024
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = 64
	}
	if l.MaxRecvMsgSize == 0 {
		l.MaxRecvMsgSize = DefaultMaxRecvMsgSize
	}
	def(&l.ConnectionTimeout, 10*time.Second)
	def(&l.MaxConnectionIdle, 5*time.Minute)
	def(&l.KeepaliveTime, time.Minute)
	def(&l.KeepaliveTimeout, 20*time.Second)
	def(&l.KeepaliveMinTime, 30*time.Second)
}

// Validate reports negative values, naming the field under prefix
// (e.g. "server.http_limits").
func (l HTTPLimits) Validate(prefix string) error {
	var errs []error
	for name, d := range map[string]time.Duration{
		"read_header_timeout": l.ReadHeaderTimeout, "read_timeout": l.ReadTimeout, "write_timeout": l.WriteTimeout,
		"max_response_time": l.MaxResponseTime, "idle_timeout": l.IdleTimeout, "stop_grace": l.StopGrace,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s.%s must not be negative", prefix, name))
		}
	}
	if l.StopGrace > MaxStopGrace {
		errs = append(errs, fmt.Errorf("%s.stop_grace %v: at most %v (0: %v)", prefix, l.StopGrace, MaxStopGrace, DefaultStopGrace))
	}
	if l.MaxHeaderBytes < 0 || l.MaxConnections < 0 || l.MaxConnectionsPerAddress < 0 {
		errs = append(errs, fmt.Errorf("%s: max_header_bytes, max_connections and max_connections_per_address must not be negative", prefix))
	}
	return errors.Join(errs...)
}

// Validate reports negative values, naming the field under prefix.
func (l GRPCLimits) Validate(prefix string) error {
	var errs []error
	for name, d := range map[string]time.Duration{
		"connection_timeout": l.ConnectionTimeout, "max_connection_idle": l.MaxConnectionIdle,
		"keepalive_time": l.KeepaliveTime, "keepalive_timeout": l.KeepaliveTimeout, "keepalive_min_time": l.KeepaliveMinTime,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s.%s must not be negative", prefix, name))
		}
	}
	if l.MaxConnections < 0 || l.MaxConnectionsPerAddress < 0 || l.MaxRecvMsgSize < 0 {
		errs = append(errs, fmt.Errorf("%s: max_connections, max_connections_per_address and max_recv_msg_size must not be negative", prefix))
	}
	return errors.Join(errs...)
}

// fileReserve is the file descriptors kept out of the listeners' caps:
// the store, the HSM module, logs, outgoing connections.
const fileReserve = 256

// FitToFileLimit lowers the connection caps so that both listeners full
// cannot exhaust limit file descriptors (RLIMIT_NOFILE): when their sum
// does not fit in what is left after a reserve, gRPC keeps at most half of
// it and HTTP the rest. g or h may be nil (a listener not served). It
// returns whether it lowered anything.
func FitToFileLimit(limit uint64, g *GRPCLimits, h *HTTPLimits) bool {
	limit = max(limit, 2*fileReserve) // a tiny limit: caps of a few hundred, still bounded
	budget := int(min(limit-fileReserve, 1<<30))
	var gc, hc *int
	sum := 0
	if g != nil {
		gc = &g.MaxConnections
		sum += *gc
	}
	if h != nil {
		hc = &h.MaxConnections
		sum += *hc
	}
	if sum <= budget {
		return false
	}
	switch {
	case gc != nil && hc != nil:
		*gc = min(*gc, budget/2)
		*hc = min(*hc, budget-*gc)
	case gc != nil:
		*gc = budget
	case hc != nil:
		*hc = budget
	}
	return true
}

// fileLimit is this process's RLIMIT_NOFILE (Go raises the soft limit to
// the hard limit at start).
func fileLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	return r.Cur, nil
}
