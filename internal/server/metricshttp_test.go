package server

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// countingGatherer counts its gatherings and the most at once; the first
// waits for hold to close.
type countingGatherer struct {
	reg                   *prometheus.Registry
	hold                  chan struct{}
	entered               chan struct{}
	calls, now, maxAtOnce atomic.Int64
}

func (g *countingGatherer) Gather() ([]*dto.MetricFamily, error) {
	n := g.calls.Add(1)
	at := g.now.Add(1)
	defer g.now.Add(-1)
	for m := g.maxAtOnce.Load(); at > m && !g.maxAtOnce.CompareAndSwap(m, at); m = g.maxAtOnce.Load() {
	}
	if n == 1 {
		close(g.entered)
		<-g.hold
	}
	return g.reg.Gather()
}

// TestAttackMetricsFlood: /metrics requests that arrive while a rendering
// runs do not render one each: at most one gathering runs at a time,
// and twenty requests during one share the renderings after it; a
// request answered alone is never stale (each sequential request sees the
// counter it follows); formats and gzip are promhttp's.
func TestAttackMetricsFlood(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "shomei_test_total", Help: "test"})
	reg.MustRegister(c)
	g := &countingGatherer{reg: reg, hold: make(chan struct{}), entered: make(chan struct{})}
	srv := httptest.NewServer(MetricsHandler(g))
	defer srv.Close()
	get := func(header http.Header) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header = header
		tr := &http.Transport{DisableCompression: true}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Error(err)
			return nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	first := make(chan string, 1)
	go func() { _, b := get(nil); first <- b }()
	<-g.entered
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if resp, body := get(nil); resp == nil || resp.StatusCode != 200 || !strings.Contains(body, "shomei_test_total 0") {
				t.Errorf("a request during a rendering: %v\n%s", resp, body)
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the twenty arrive while the first renders
	close(g.hold)
	wg.Wait()
	<-first
	if n := g.maxAtOnce.Load(); n != 1 {
		t.Errorf("%d gatherings at once, want 1", n)
	}
	if n := g.calls.Load(); n >= 21 {
		t.Errorf("21 requests, %d gatherings: none shared", n)
	}
	t.Logf("21 requests, %d gatherings", g.calls.Load())

	for i := 1; i <= 3; i++ {
		c.Inc()
		if _, body := get(nil); !strings.Contains(body, "shomei_test_total "+string(rune('0'+i))+"\n") {
			t.Errorf("after %d increments /metrics says\n%s", i, body)
		}
	}
	resp, body := get(http.Header{"Accept-Encoding": {"gzip"}})
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Accept-Encoding gzip: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); !strings.Contains(string(plain), "shomei_test_total 3\n") {
		t.Errorf("gzip body:\n%s", plain)
	}
	if resp, _ := get(http.Header{"Accept-Encoding": {"gzip;q=0"}}); resp.Header.Get("Content-Encoding") == "gzip" {
		t.Error("gzip;q=0 answered with gzip")
	}
	resp, _ = get(http.Header{"Accept": {"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"}})
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.google.protobuf") {
		t.Errorf("protobuf asked: Content-Type %q", ct)
	}
}
