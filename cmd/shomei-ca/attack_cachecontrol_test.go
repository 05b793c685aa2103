package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// TestAttackOCSPCacheControl (issue 13, R-R4, R-R6): with
// ocsp.good_max_age 60s on a real CA, the Cache-Control of each answer,
// over POST and GET, pre-signed or signed on demand: a good answer may be
// kept 60 s at most; a revoked one keeps the time to its nextUpdate (well
// past 60 s); an unknown serial and a nonce answer are no-cache, so that no
// cache keeps them as a good answer; a refused request is no-cache.
func TestAttackOCSPCacheControl(t *testing.T) {
	dir := t.TempDir()
	p := startCA(t, writeConfig(t, dir, "e2e-attack-cache", "ocsp:\n  good_max_age: 60s\n"))
	cl := p.client(t)
	good, issuer, template := signRequest(t, p, cl, "ATTACK-CACHE-1")
	toRevoke := issueOne(t, cl, "ATTACK-CACHE-2")[0]
	revoked, err := certOf(toRevoke)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Revoke(context.Background(), &cav1.RevokeRequest{Serial: toRevoke.Serial, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	maxAge := regexp.MustCompile(`^max-age=(\d+), public, no-transform, must-revalidate$`)
	nonce := make([]byte, 16)
	rand.Read(nonce)
	unknown := new(big.Int).Lsh(big.NewInt(1), 100)
	for _, tc := range []struct {
		name       string
		der        []byte
		status     int // xocsp status; -1: an error response
		minAge     int // -1: no-cache
		maxAgeSecs int
	}{
		{"good", certIDRequest(t, template, good.SerialNumber, nil), xocsp.Good, 1, 60},
		{"revoked", certIDRequest(t, template, revoked.SerialNumber, nil), xocsp.Revoked, 61, 3600},
		{"unknown", certIDRequest(t, template, unknown, nil), xocsp.Unknown, -1, 0},
		{"good with a nonce", certIDRequest(t, template, good.SerialNumber, nonce), xocsp.Good, -1, 0},
		{"garbage", []byte("not an OCSP request"), -1, -1, 0},
	} {
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			// The revocation reaches OCSP within R-R4's second.
			deadline := time.Now().Add(10 * time.Second)
			for {
				var resp *http.Response
				var body []byte
				if method == http.MethodPost {
					resp, body = postOCSP(t, http.DefaultClient, "http://"+p.http+"/ocsp", tc.der, nil)
				} else {
					resp, body = fetch(t, "http://"+p.http+"/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(tc.der)))
				}
				cc := resp.Header.Get("Cache-Control")
				r, err := xocsp.ParseResponse(body, issuer)
				switch {
				case tc.status == -1 && err == nil:
					t.Fatalf("%s %s: a successful response", tc.name, method)
				case tc.status != -1 && err != nil:
					t.Fatalf("%s %s: %v", tc.name, method, err)
				case tc.status != -1 && r.Status != tc.status:
					if time.Now().Before(deadline) {
						time.Sleep(100 * time.Millisecond)
						continue
					}
					t.Fatalf("%s %s: status %d, want %d", tc.name, method, r.Status, tc.status)
				}
				if tc.minAge == -1 {
					if cc != "no-cache" {
						t.Errorf("%s %s: Cache-Control %q, want no-cache", tc.name, method, cc)
					}
				} else if m := maxAge.FindStringSubmatch(cc); m == nil {
					t.Errorf("%s %s: Cache-Control %q, want max-age", tc.name, method, cc)
				} else if age, _ := strconv.Atoi(m[1]); age < tc.minAge || age > tc.maxAgeSecs {
					t.Errorf("%s %s: max-age %d, want %d to %d", tc.name, method, age, tc.minAge, tc.maxAgeSecs)
				}
				break
			}
		}
	}
	p.stop(t)
}
