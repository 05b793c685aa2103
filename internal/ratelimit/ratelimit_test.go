package ratelimit

import (
	"net"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestKeyedTakeRefill(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	k := NewKeyed(0, clk.now)
	l := Limit{Rate: 2, Burst: 3}
	for i := range 3 {
		if ok, _ := k.Take("a", l); !ok {
			t.Fatalf("take %d refused within the burst", i)
		}
	}
	ok, wait := k.Take("a", l)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("take past the burst = %v, %v; want false, 500ms", ok, wait)
	}
	if ok, _ := k.Take("b", l); !ok {
		t.Fatal("another key shares a's bucket")
	}
	if ok, _ := k.Ready("a", l); ok {
		t.Fatal("Ready on an empty bucket")
	}
	clk.t = clk.t.Add(500 * time.Millisecond)
	if ok, _ := k.Ready("a", l); !ok {
		t.Fatal("no token after refilling")
	}
	if ok, _ := k.Take("a", l); !ok {
		t.Fatal("Ready took the token")
	}
	for i := range 3 {
		if ok, _ := k.Take("no-burst", Limit{Rate: 3}); !ok {
			t.Fatalf("take %d of a one-second burst refused", i)
		}
	}
	if ok, _ := k.Take("no-burst", Limit{Rate: 3}); ok {
		t.Fatal("a fourth take within a one-second burst of 3")
	}
	if ok, _ := k.Take("x", Limit{}); !ok {
		t.Fatal("an unlimited Limit refused")
	}
}

func TestKeyedBounded(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	k := NewKeyed(100, clk.now)
	l := Limit{Rate: 1, Burst: 1}
	for i := range 1000 {
		k.Take(net.IPv4(10, 0, byte(i>>8), byte(i)).String(), l)
		if n := k.Len(); n > 100 {
			t.Fatalf("%d keys tracked, at most 100 allowed", n)
		}
	}
	if ok, _ := k.Ready("never-seen", l); !ok || k.Len() > 100 {
		t.Fatal("Ready of an unknown key refused or tracked")
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:5555":             "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:1":       "192.0.2.7",
	} {
		addr, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := AddressKey(addr); got != want {
			t.Errorf("AddressKey(%s) = %s, want %s", in, got, want)
		}
	}
	if AddressKey(nil) != "unknown" {
		t.Error("nil address")
	}
}
