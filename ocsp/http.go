package ocsp

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// contentTypeResponse is the media type of responses (RFC 6960 Appendix A).
const contentTypeResponse = "application/ocsp-response"

// httpError is a request that is not an OCSP request at all: wrong method
// or path. It is answered with an HTTP status, not an OCSPResponse.
type httpError int

func (e httpError) Error() string { return http.StatusText(int(e)) }

// ServeHTTP answers OCSP over HTTP (RFC 6960 Appendix A, RFC 5019 §5):
// POST Path with the DER request as the body (any Content-Type; clients
// should send application/ocsp-request), and GET or HEAD
// Path/{base64 of the DER request, URL-encoded}. OCSP-level errors are
// HTTP 200 with an unsigned OCSPResponse, as clients expect; only a wrong
// method (405) or path (404) gets an HTTP error.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	der, err := r.read(w, req)
	if he, ok := errors.AsType[httpError](err); ok {
		http.Error(w, he.Error(), int(he))
		return
	}
	now := r.now()
	var resp *response
	if err == nil {
		var parsed *Request
		if parsed, err = ParseRequest(der); err == nil {
			resp, err = r.answer(req.Context(), parsed, now)
		}
	}
	if err != nil {
		r.fail(w, req, err)
		return
	}
	for _, s := range resp.statuses {
		r.metrics.certStatus(s).Inc()
	}
	r.write(w, req, resp, now)
}

// read returns the DER request of an HTTP request.
func (r *Responder) read(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	path := req.URL.Path
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		enc, ok := strings.CutPrefix(path, r.path+"/")
		if !ok && path != r.path {
			return nil, httpError(http.StatusNotFound)
		}
		if enc == "" {
			return nil, malformed("GET path", "no request after %s/", r.path)
		}
		if len(enc) > base64.StdEncoding.EncodedLen(maxRequestBytes) {
			return nil, malformed("GET path", "longer than a request of %d bytes", maxRequestBytes)
		}
		return decodeBase64(enc)
	case http.MethodPost:
		if path != r.path && path != r.path+"/" {
			return nil, httpError(http.StatusNotFound)
		}
		body, err := readBody(w, req)
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, malformed("POST body", "larger than %d bytes", maxRequestBytes)
		}
		if err != nil {
			return nil, malformed("POST body", "cannot be read: %v", err)
		}
		return body, nil
	}
	w.Header().Set("Allow", "GET, HEAD, POST")
	return nil, httpError(http.StatusMethodNotAllowed)
}

// readBody reads a POST body of at most maxRequestBytes, into a buffer of
// the announced length when there is one (io.ReadAll would grow one from
// 512 bytes for each request).
func readBody(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	length := req.ContentLength
	if length <= 0 || length > maxRequestBytes {
		return io.ReadAll(http.MaxBytesReader(w, req.Body, maxRequestBytes))
	}
	// net/http ends the body at its Content-Length.
	body := req.Body
	buf := make([]byte, length, length+1)
	if _, err := io.ReadFull(body, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("the body is shorter than its Content-Length: %w", err)
		}
		return nil, err
	}
	// net/http refuses bodies longer than their Content-Length; check
	// anyway that nothing follows.
	if n, _ := body.Read(buf[length : length+1]); n != 0 {
		return nil, errors.New("the body is longer than its Content-Length")
	}
	return buf, nil
}

// decodeBase64 decodes a GET request. RFC 6960 Appendix A asks for
// standard base64, URL-encoded; the path arrives here URL-decoded. Clients
// also send it unpadded, in the URL alphabet, or with '+' turned into a
// space: all are accepted.
func decodeBase64(enc string) ([]byte, error) {
	enc = strings.ReplaceAll(enc, " ", "+")
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if der, err := e.DecodeString(enc); err == nil {
			return der, nil
		}
	}
	return nil, malformed("GET path", "not base64")
}

// fail sends the unsigned OCSPResponse an error maps to.
func (r *Responder) fail(w http.ResponseWriter, req *http.Request, err error) {
	status := internalError
	te, over := errors.AsType[tryLaterError](err)
	switch {
	case errors.Is(err, ErrMalformed):
		status = malformedRequest
		r.log.Debug("ocsp: malformed request", "method", req.Method, "err", err)
	case errors.Is(err, errUnauthorized):
		status = unauthorized
		r.log.Debug("ocsp: unauthorized request", "err", err)
	case over:
		status = tryLater
		w.Header().Set("Retry-After", strconv.FormatInt(te.retryAfter(), 10))
		r.log.Debug("ocsp: over the signature budget", "err", err)
	case req.Context().Err() != nil:
		r.log.Debug("ocsp: client went away", "err", err)
	default:
		r.log.Error("ocsp: cannot answer", "err", err)
	}
	r.metrics.responses.WithLabelValues(status.String()).Inc()
	body := errorResponse(status)
	h := w.Header()
	h.Set("Content-Type", contentTypeResponse)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// write sends a successful response. A cacheable one (no nonce, no unknown
// status) gets RFC 5019 §6.2's caching headers and answers a matching
// If-None-Match on GET with 304; the others get Cache-Control: no-cache.
func (r *Responder) write(w http.ResponseWriter, req *http.Request, resp *response, now time.Time) {
	// Header keys are written canonical, without Set's canonicalisation.
	// Values are shared between responses: net/http only reads them.
	h := w.Header()
	h["Content-Type"] = contentTypeHeader
	if resp.cacheable {
		age := resp.nextUpdate.Sub(now)
		if limit, ok := r.ageLimit(resp); ok && age > limit {
			age = limit
		}
		h["Cache-Control"] = resp.cacheControlHeader(int64(max(age, 0) / time.Second))
		h["Last-Modified"] = resp.lastModified
		h["Expires"] = resp.expires
		h["Etag"] = resp.etagHeader
		if req.Method != http.MethodPost && etagMatch(req.Header["If-None-Match"], resp.etagHeader[0]) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	} else {
		h["Cache-Control"] = noCacheHeader
	}
	h["Content-Length"] = resp.contentLength
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(resp.head); err == nil {
		w.Write(resp.tail)
	}
}

var (
	contentTypeHeader = []string{contentTypeResponse}
	noCacheHeader     = []string{"no-cache"}
)

// ageLimit is the cap on the max-age of the cacheable resp, if any:
// GoodMaxAge for an all-good response when set, else MaxAge when not 0.
func (r *Responder) ageLimit(resp *response) (time.Duration, bool) {
	if resp.good && r.goodMaxAge != nil {
		return *r.goodMaxAge, true
	}
	return r.maxAge, r.maxAge > 0
}

// CheckGoodMaxAge checks a GoodMaxAge against the response validity: not
// negative, whole seconds (max-age has no fractions) and no longer than
// a response is valid (a cache keeps none past its nextUpdate anyway).
func CheckGoodMaxAge(d, validity time.Duration) error {
	switch {
	case d < 0:
		return fmt.Errorf("%v is negative", d)
	case d%time.Second != 0:
		return fmt.Errorf("%v is not whole seconds (max-age counts seconds)", d)
	case d > validity:
		return fmt.Errorf("%v is longer than the response validity %v", d, validity)
	}
	return nil
}

// cacheControlHeader is the Cache-Control value of a cacheable response
// with max-age maxAge seconds (RFC 5019 §6.2).
func (resp *response) cacheControlHeader(maxAge int64) []string {
	if cc := resp.cacheControl.Load(); cc != nil && cc.maxAge == maxAge {
		return cc.value
	}
	cc := &cacheControl{maxAge: maxAge, value: []string{"max-age=" + strconv.FormatInt(maxAge, 10) + ", public, no-transform, must-revalidate"}}
	resp.cacheControl.Store(cc)
	return cc.value
}

// etagMatch reports whether If-None-Match header values match etag, by the
// weak comparison RFC 9110 §13.1.2 asks for.
func etagMatch(values []string, etag string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// InFront returns a handler that serves the responder's Path (and what
// lies under it) and passes every other request to next. Use it instead of
// registering the responder on an http.ServeMux, which would clean the
// base64 of GET requests ("//" is valid base64).
func (r *Responder) InFront(next http.Handler) http.Handler { return r.Route(r, next) }

// Route is InFront with h, a handler wrapping the responder (an access
// gate, R-R6), serving the responder's Path.
func (r *Responder) Route(h, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if p := req.URL.Path; p == r.path || strings.HasPrefix(p, r.path+"/") {
			h.ServeHTTP(w, req)
			return
		}
		next.ServeHTTP(w, req)
	})
}

// Unauthorized answers every request with the unsigned unauthorized
// OCSPResponse (6, RFC 6960 §2.3), counted like the responder's own: what
// an access gate sends a caller that may not ask (R-R6). It reads nothing
// and signs nothing.
func (r *Responder) Unauthorized() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.fail(w, req, fmt.Errorf("%w: not a registered relying party", errUnauthorized))
	})
}
