package server

import (
	"net/http"
	"time"
)

// writeChunk is how much of a response one WriteTimeout covers.
const writeChunk = 64 << 10

// progressDeadlines lets GET and HEAD responses longer than writeChunk
// (CRLs) run as long as the client keeps reading: http.Server's
// WriteTimeout covers the first writeChunk bytes, and every further
// chunk gets WriteTimeout of its own, up to MaxResponseTime from the
// start. A client that stops reading is cut after WriteTimeout; one that
// reads a 40 MB CRL at 1 Mbit/s is not. Requests with a body (OCSP
// POSTs, small) keep the server's plain WriteTimeout.
func progressDeadlines(h http.Handler, l HTTPLimits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&progressWriter{ResponseWriter: w, step: l.WriteTimeout, end: time.Now().Add(l.MaxResponseTime)}, r)
	})
}

// progressWriter extends the connection's deadlines chunk by chunk once
// a response passes writeChunk bytes.
type progressWriter struct {
	http.ResponseWriter
	step    time.Duration
	end     time.Time
	written int
	rc      *http.ResponseController
}

func (w *progressWriter) Write(p []byte) (int, error) {
	if w.written+len(p) <= writeChunk { // the server's WriteTimeout covers it
		n, err := w.ResponseWriter.Write(p)
		w.written += n
		return n, err
	}
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	total := 0
	for len(p) > 0 {
		n := min(len(p), writeChunk)
		d := time.Now().Add(w.step)
		if d.After(w.end) {
			d = w.end
		}
		// The read deadline too: the request is read (GET, HEAD), and
		// net/http's background read must not time out mid-response.
		w.rc.SetWriteDeadline(d)
		w.rc.SetReadDeadline(d)
		m, err := w.ResponseWriter.Write(p[:n])
		total += m
		w.written += m
		if err != nil {
			return total, err
		}
		p = p[n:]
	}
	return total, nil
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
