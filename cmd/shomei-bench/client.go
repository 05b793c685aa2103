package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// The load generator's HTTP/1.1 client. net/http's client costs the
// generator tens of microseconds per request (a reader and a writer
// goroutine per connection, channels, header maps), which on a small
// machine is as much as the servers under test spend; this one writes each
// request with one system call and parses the response in place, so that
// the generator measures the servers rather than itself. It speaks just
// enough HTTP for the three servers measured: a POST, a response with a
// Content-Length (or, from an HTTP/1.0 server, one that ends at EOF), and
// a new connection whenever the server closes one, as openssl ocsp does
// after every response.

// requestTimeout bounds one request, connecting included.
const requestTimeout = 30 * time.Second

// conn is one worker's connection to a server: one request in flight at a
// time. Not safe for concurrent use.
type conn struct {
	host, path string
	dials      *atomic.Int64 // connections opened, shared by the workers
	c          net.Conn
	br         *bufio.Reader
	req        []byte // the request being sent, head and body
}

// newConn prepares a connection to the server of rawURL (http, host:port,
// path); it connects on first use.
func newConn(rawURL string, dials *atomic.Int64) (*conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Port() == "" {
		return nil, fmt.Errorf("%s: want http://host:port/path", rawURL)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return &conn{host: u.Host, path: path, dials: dials}, nil
}

// close closes the connection, if open.
func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// post sends der as an OCSP request and reads the response body into
// body. A kept-alive connection the server has closed in the meantime is
// replaced once, and the request sent again.
func (c *conn) post(ctx context.Context, der []byte, body *bytes.Buffer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.req = append(c.req[:0], "POST "...)
	c.req = append(c.req, c.path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, c.host...)
	c.req = append(c.req, "\r\nContent-Type: application/ocsp-request\r\nContent-Length: "...)
	c.req = strconv.AppendInt(c.req, int64(len(der)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, der...)

	reused := c.c != nil
	err := c.roundTrip(body)
	if err != nil && reused && errors.Is(err, errStale) {
		err = c.roundTrip(body)
	}
	if err != nil {
		c.close()
	}
	return err
}

// errStale: a kept-alive connection was closed before anything of the
// response arrived.
var errStale = errors.New("connection closed by the server before the response")

func (c *conn) roundTrip(body *bytes.Buffer) error {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.host, requestTimeout)
		if err != nil {
			return err
		}
		c.dials.Add(1)
		c.c = nc
		if c.br == nil {
			c.br = bufio.NewReaderSize(nc, 8<<10)
		} else {
			c.br.Reset(nc)
		}
	}
	if err := c.c.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		return err
	}
	if _, err := c.c.Write(c.req); err != nil {
		c.close()
		return fmt.Errorf("%w: %v", errStale, err)
	}
	keep, err := c.readResponse(body)
	if err != nil {
		return err
	}
	if !keep {
		c.close()
	}
	return nil
}

// readResponse reads one response into body and says whether the
// connection may carry another request.
func (c *conn) readResponse(body *bytes.Buffer) (keepAlive bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		c.close()
		if len(line) == 0 {
			return false, fmt.Errorf("%w: %v", errStale, err)
		}
		return false, fmt.Errorf("status line: %w", err)
	}
	proto, rest, ok := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(" "))
	if !ok || len(rest) < 3 {
		return false, fmt.Errorf("malformed status line %q", line)
	}
	http10 := string(proto) == "HTTP/1.0"
	if !http10 && string(proto) != "HTTP/1.1" {
		return false, fmt.Errorf("not HTTP/1.x: %q", line)
	}
	status := string(rest[:3])
	keepAlive = !http10
	length := -1
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return false, fmt.Errorf("headers: %w", err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return false, fmt.Errorf("malformed header %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 {
				return false, fmt.Errorf("bad Content-Length %q", value)
			}
			length = n
		case asciiEqualFold(name, "Connection"):
			switch {
			case asciiEqualFold(value, "close"):
				keepAlive = false
			case asciiEqualFold(value, "keep-alive"):
				keepAlive = true
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			return false, fmt.Errorf("Transfer-Encoding %q: not supported by the load generator", value)
		}
	}
	body.Reset()
	if length >= 0 {
		b := slices.Grow(body.AvailableBuffer(), length)[:length]
		if _, err := io.ReadFull(c.br, b); err != nil {
			return false, fmt.Errorf("body: %w", err)
		}
		body.Write(b)
	} else {
		// No length: the body ends when the server closes the connection.
		if _, err := body.ReadFrom(c.br); err != nil {
			return false, fmt.Errorf("body: %w", err)
		}
		keepAlive = false
	}
	if status != "200" {
		return false, fmt.Errorf("HTTP %s", bytes.TrimRight(rest, "\r\n"))
	}
	return keepAlive, nil
}

// asciiEqualFold compares an HTTP token with a lower-or-mixed-case name.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
