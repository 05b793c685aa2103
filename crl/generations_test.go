package crl_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/crl"
)

// recordingSource is a fakeSource that records each CRL saved on its
// partition, as the store does, so a published partition is due again
// only when it changes or nears its nextUpdate.
type recordingSource struct {
	fakeSource
}

func (s *recordingSource) SaveCRL(name string, number uint64, thisUpdate, nextUpdate time.Time, revision uint64, der []byte) error {
	for _, p := range s.parts {
		if p.Name == name {
			p.Number, p.Revision = number, revision
			p.ThisUpdate, p.NextUpdate = timestamppb.New(thisUpdate), timestamppb.New(nextUpdate)
		}
	}
	return s.fakeSource.SaveCRL(name, number, thisUpdate, nextUpdate, revision, der)
}

// syncBuffer is a log destination safe for the publisher's writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestPublisherGenerations: a generation added while the publisher runs
// gets its partition published, signed by its own key, as soon as the
// partition appears (its first certificate); once a generation is retired
// (its key signs nothing, R-K1) its partitions are no longer published,
// without an error, a log line every cycle, or /readyz failing when its last
// CRL runs out — and its last CRL is still served.
func TestPublisherGenerations(t *testing.T) {
	g1 := hsmIssuer(t)
	g2cert, err := newIssuer(issuer.DefaultDN(sign), key("ca-p256"))
	if err != nil {
		t.Fatal(err)
	}
	retired := map[uint32]bool{}
	var mu sync.Mutex
	signers := func(p storev1.Profile, gen uint32) (*x509.Certificate, crypto.Signer, error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case retired[gen]:
			return nil, nil, fmt.Errorf("ca: sign issuer generation %d is retired: it signs nothing", gen)
		case gen == 1:
			return g1.issuer, g1.key, nil
		case gen == 2:
			return g2cert, key("ca-p256"), nil
		}
		return nil, nil, fmt.Errorf("no generation %d", gen)
	}
	src := &recordingSource{fakeSource{entries: map[string][]crl.Entry{}}}
	src.add(g1.partition)
	now := thisUpdate
	logs := &syncBuffer{}
	pub, err := crl.NewPublisher(crl.PublisherConfig{
		Source: src, Issuers: signers, Validity: time.Hour,
		Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := pub.PublishDue(ctx); err != nil {
		t.Fatal(err)
	}

	// Generation 2 issues its first certificate: its partition appears.
	g2part := partition(sign, "sign", "13221", "清瀬市")
	g2part.Name = strings.Replace(g2part.Name, "-g1-", "-g2-", 1)
	g2part.URL = strings.Replace(g2part.URL, "-g1-", "-g2-", 1)
	src.add(g2part)
	src.parts[len(src.parts)-1].IssuerGeneration = 2
	now = now.Add(time.Minute)
	if err := pub.PublishDue(ctx); err != nil {
		t.Fatalf("publishing generation 2's partition: %v", err)
	}
	list, err := x509.ParseRevocationList(servedCRL(t, pub, g2part.Name))
	if err != nil {
		t.Fatal(err)
	}
	if err := list.CheckSignatureFrom(g2cert); err != nil {
		t.Errorf("generation 2's CRL is not signed by generation 2: %v", err)
	}
	last := servedCRL(t, pub, g1.partition.Name)

	// Generation 1 is retired: the CA's signer refuses it.
	mu.Lock()
	retired[1] = true
	mu.Unlock()
	pub.SetRetired([]crl.Generation{{Profile: sign, Generation: 1}})
	for range 5 { // cycles past generation 1's nextUpdate
		now = now.Add(30 * time.Minute)
		if err := pub.PublishDue(ctx); err != nil {
			t.Fatalf("PublishDue with generation 1 retired: %v", err)
		}
	}
	if logs.String() != "" {
		t.Errorf("warnings or errors logged with generation 1 retired:\n%s", logs)
	}
	if _, err := pub.Health(now.Add(time.Minute)); err != nil {
		t.Errorf("Health with generation 1 retired and its last CRL run out: %v; want ready", err)
	}
	if got := servedCRL(t, pub, g1.partition.Name); !bytes.Equal(got, last) {
		t.Error("generation 1's last CRL is no longer served")
	}
	list, err = x509.ParseRevocationList(servedCRL(t, pub, g2part.Name))
	if err != nil {
		t.Fatal(err)
	}
	if !list.NextUpdate.After(now) {
		t.Errorf("generation 2's CRL stopped being renewed: nextUpdate %v, now %v", list.NextUpdate, now)
	}

	// Without SetRetired, the same refusal is an error and, once stale,
	// makes the publisher unhealthy: what SetRetired is for.
	pub.SetRetired(nil)
	if err := pub.PublishDue(ctx); err == nil || !strings.Contains(err.Error(), "retired") {
		t.Errorf("PublishDue with generation 1 not marked retired: %v, want its refusal", err)
	}
}
