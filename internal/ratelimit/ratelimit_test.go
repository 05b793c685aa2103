package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	b, err := NewBucket(2, 3, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if ok, _ := b.Allow(now); !ok {
			t.Fatalf("token %d refused within the burst", i)
		}
	}
	ok, wait := b.Allow(now)
	if ok || wait != 500*time.Millisecond || RetryAfter(wait) != 1 {
		t.Fatalf("over the burst: %v, wait %v", ok, wait)
	}
	if ok, _ := b.Allow(now.Add(500 * time.Millisecond)); !ok {
		t.Fatal("refused after refilling one token")
	}
	if ok, _ := b.Allow(now.Add(time.Hour)); !ok {
		t.Fatal("refused after an hour")
	}
	for _, bad := range []struct {
		rate  float64
		burst int
	}{{0, 1}, {-1, 1}, {1, 0}} {
		if _, err := NewBucket(bad.rate, bad.burst, now); err == nil {
			t.Errorf("NewBucket(%v, %d) accepted", bad.rate, bad.burst)
		}
	}
}

// TestTableBounded: a flood of distinct keys never holds more than Size
// buckets, and a key within its limit is not disturbed by others.
func TestTableBounded(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	tab, err := NewTable(Config{Rate: 1, Burst: 2, Size: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100000 {
		tab.Allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
	}
	if n := tab.Len(); n > 1000 {
		t.Fatalf("%d keys kept; Size is 1000", n)
	}
	tab.Allow("a", now)
	tab.Allow("a", now)
	if ok, wait := tab.Allow("a", now); ok || RetryAfter(wait) != 1 {
		t.Fatalf("third request within the second: %v, %v", ok, wait)
	}
	if ok, _ := tab.Allow("b", now); !ok {
		t.Fatal("another key refused")
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:443":                "192.0.2.7",
		"[::ffff:192.0.2.7]:443":       "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:80":    "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:4:5:6]:80": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:80":         "2001:db8:1:3::/64",
		"not an address":               "not an address",
		"@":                            "@",
	} {
		if got := AddressKey(in); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLimitAndReady: a configured Limit makes a bucket (none when
// unlimited, one second's worth when Burst is unset), and Ready peeks
// without taking or adding a key.
func TestLimitAndReady(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	if (Limit{}).Bucket(now) != nil || (Limit{Rate: -1}).Bucket(now) != nil {
		t.Fatal("an unlimited Limit made a bucket")
	}
	b := Limit{Rate: 3}.Bucket(now)
	for i := range 3 {
		if ok, _ := b.Allow(now); !ok {
			t.Fatalf("take %d of a one-second burst of 3 refused", i)
		}
	}
	if ok, _ := b.Allow(now); ok {
		t.Fatal("a fourth take within a one-second burst of 3")
	}
	tab, err := NewTable(Config{Rate: 2, Burst: 1, Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := tab.Ready("never-seen", now); !ok || tab.Len() != 0 {
		t.Fatal("Ready of an unknown key refused or added it")
	}
	tab.Allow("a", now)
	if ok, wait := tab.Ready("a", now); ok || wait != 500*time.Millisecond {
		t.Fatalf("Ready on an empty bucket = %v, %v", ok, wait)
	}
	if ok, _ := tab.Ready("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("no token after refilling")
	}
	if ok, _ := tab.Allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("Ready took the token")
	}
}
