package caller

import (
	"context"
	"testing"
)

func TestWithFrom(t *testing.T) {
	if _, ok := From(context.Background()); ok {
		t.Fatal("a bare context carries a caller")
	}
	ctx := With(context.Background(), Caller{Name: "kiyose", Kind: Municipal, Via: "token"})
	c, ok := From(ctx)
	if !ok || c.Name != "kiyose" || c.Kind != Municipal {
		t.Fatalf("From = %+v, %v", c, ok)
	}
	if got := c.String(); got != "municipal:kiyose" {
		t.Fatalf("String = %q", got)
	}
	if got := (Caller{Kind: Local}).String(); got != "local" {
		t.Fatalf("String = %q", got)
	}
}
