package caller

import "context"

// Kind says what sort of caller a request came from.
type Kind string

const (
	// Municipal is a municipal system acting for its own municipalities.
	Municipal Kind = "municipal"
	// Replica is an OCSP replica (shomei-ocsp).
	Replica Kind = "replica"
	// Operator is a person operating the CA.
	Operator Kind = "operator"
	// Local is a caller admitted without credentials (development on
	// loopback, or the CA itself).
	Local Kind = "local"
)

// Caller is who a request came from, as authenticated.
type Caller struct {
	// Name is the client's configured name (never its token).
	Name string
	Kind Kind
	// Via says how it was authenticated: "token", "mtls+token", "none".
	Via string
}

// String is the caller as the audit log names it: "municipal:kiyose".
func (c Caller) String() string {
	if c.Name == "" {
		return string(c.Kind)
	}
	return string(c.Kind) + ":" + c.Name
}

type key struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, key{}, c)
}

// From returns the caller ctx carries, if any.
func From(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(key{}).(Caller)
	return c, ok
}
