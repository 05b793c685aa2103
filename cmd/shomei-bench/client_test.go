package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestConnNetHTTP: against net/http, the client keeps one connection for
// many requests, sends the request net/http expects and reads each body.
func TestConnNetHTTP(t *testing.T) {
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.URL.Path != "/ocsp" ||
			r.Header.Get("Content-Type") != "application/ocsp-request" {
			http.Error(w, fmt.Sprintf("%s %s %q %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err), http.StatusBadRequest)
			return
		}
		seen.Add(1)
		// Echo the body twice: the response differs from the request.
		w.Header().Set("Content-Length", strconv.Itoa(2*len(body)))
		w.Write(append(body, body...))
	}))
	defer srv.Close()
	c, dials := testConn(t, srv.URL+"/ocsp")
	var body bytes.Buffer
	for i := range 50 {
		req := bytes.Repeat([]byte{byte(i)}, 1+i*97) // up to ~4.8 KB, past one bufio fill
		if err := c.post(context.Background(), req, &body); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if want := append(req, req...); !bytes.Equal(body.Bytes(), want) {
			t.Fatalf("request %d: body of %d bytes, want %d", i, body.Len(), len(want))
		}
	}
	if seen.Load() != 50 || dials.Load() != 1 {
		t.Errorf("server saw %d requests over %d connections, want 50 over 1", seen.Load(), dials.Load())
	}
}

// testConn is a client connection to url, closed when the test ends, and
// the count of its dials.
func testConn(t *testing.T, url string) (*conn, *atomic.Int64) {
	t.Helper()
	dials := new(atomic.Int64)
	c, err := newConn(url, dials)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c, dials
}

// rawServer answers each connection with respond, after reading one
// request head and its Content-Length body.
func rawServer(t *testing.T, respond func(n int, body []byte) (reply string, keep bool)) (url string, conns *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conns = new(atomic.Int64)
	var requests atomic.Int64
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					length := 0
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
							length, _ = strconv.Atoi(strings.TrimSpace(v))
						}
						if line == "\r\n" {
							break
						}
					}
					body := make([]byte, length)
					if _, err := io.ReadFull(br, body); err != nil {
						return
					}
					reply, keep := respond(int(requests.Add(1)), body)
					io.WriteString(nc, reply)
					if !keep {
						return
					}
				}
			}()
		}
	}()
	return "http://" + l.Addr().String() + "/", conns
}

// TestConnClosingServers: servers that close after each response (HTTP/1.0
// like openssl ocsp, Connection: close, a body that ends at EOF) or close a
// kept-alive connection between requests get a new connection each time,
// and no request fails.
func TestConnClosingServers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reply     func(body []byte) string
		keep      func(n int) bool
		wantDials int64
	}{
		{"HTTP/1.0", func(b []byte) string {
			return "HTTP/1.0 200 OK\r\nContent-type: application/ocsp-response\r\nContent-Length: " + strconv.Itoa(len(b)) + "\r\n\r\n" + string(b)
		}, func(int) bool { return false }, 5},
		{"Connection: close", func(b []byte) string {
			return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(b)) + "\r\n\r\n" + string(b)
		}, func(int) bool { return false }, 5},
		{"body to EOF", func(b []byte) string {
			return "HTTP/1.0 200 OK\r\n\r\n" + string(b)
		}, func(int) bool { return false }, 5},
		// The server drops the kept-alive connection after requests 2 and
		// 4 without saying so: the client finds out when it sends the next
		// one, and sends it again on a new connection.
		{"stale keep-alive", func(b []byte) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(b)) + "\r\n\r\n" + string(b)
		}, func(n int) bool { return n%2 == 1 }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := rawServer(t, func(n int, body []byte) (string, bool) { return tc.reply(body), tc.keep(n) })
			c, dials := testConn(t, url)
			var body bytes.Buffer
			for i := range 5 {
				req := []byte(fmt.Sprintf("request %d", i))
				if err := c.post(context.Background(), req, &body); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if !bytes.Equal(body.Bytes(), req) {
					t.Fatalf("request %d: body %q", i, body.Bytes())
				}
			}
			if dials.Load() != tc.wantDials {
				t.Errorf("%d connections, want %d", dials.Load(), tc.wantDials)
			}
		})
	}
}

// TestConnRefusals: what the client does not understand, or what is not a
// success, is an error, never a response.
func TestConnRefusals(t *testing.T) {
	for _, tc := range []struct{ name, reply, want string }{
		{"status", "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno", "HTTP 404 Not Found"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "Transfer-Encoding"},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", "status line"},
		{"HTTP/2", "HTTP/2 200\r\n\r\n", "not HTTP/1.x"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"},
		{"short body", "HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nshort", "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := rawServer(t, func(int, []byte) (string, bool) { return tc.reply, false })
			c, _ := testConn(t, url)
			var body bytes.Buffer
			err := c.post(context.Background(), []byte("x"), &body)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("post: %v, want an error about %q", err, tc.want)
			}
		})
	}
	if _, err := newConn("https://127.0.0.1:1/", new(atomic.Int64)); err == nil {
		t.Error("newConn accepted https")
	}
}
