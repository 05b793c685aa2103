package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/shomei-pki/shomei/ca/caller"
	"github.com/shomei-pki/shomei/internal/ratelimit"
)

// Client is a municipal system and the municipalities it acts for, an
// OCSP replica (Replica, no municipalities), or an operator (Operator, no
// municipalities: the Operations service only).
type Client struct {
	Name           string
	Token          string
	Municipalities []string
	Replica        bool
	Operator       bool
	// TLSName is, under mutual TLS, the name the client's certificate must
	// carry (subject common name or a DNS name) when it sends this
	// client's token; default Name. A certificate and a token that name
	// different clients are refused (Unauthenticated).
	TLSName string
	// Limit is the client's request rate; zero: the Gate's default.
	Limit ratelimit.Limit
}

// ReplicaAuthorizer admits OCSP replicas to the Replication service and
// returns the replica's name for the audit log.
type ReplicaAuthorizer interface {
	AuthorizeReplica(ctx context.Context) (name string, err error)
}

// TokenAuthorizer admits callers presenting a client's bearer token
// ("authorization: Bearer <token>" metadata) for that client's
// municipalities only. Only the tokens' hashes are kept.
type TokenAuthorizer struct {
	clients []tokenClient
	byName  map[string]*tokenClient
}

type tokenClient struct {
	name           string
	tokenSHA256    [sha256.Size]byte
	municipalities []string
	replica        bool
	operator       bool
	tlsName        string
	limit          ratelimit.Limit
}

// caller is the client as the audit log names it.
func (c *tokenClient) caller(via string) caller.Caller {
	kind := caller.Municipal
	switch {
	case c.replica:
		kind = caller.Replica
	case c.operator:
		kind = caller.Operator
	}
	return caller.Caller{Name: c.name, Kind: kind, Via: via}
}

var (
	_ Authorizer        = (*TokenAuthorizer)(nil)
	_ ReplicaAuthorizer = (*TokenAuthorizer)(nil)
)

// minTokenLength is the shortest bearer token accepted, maxTokenLength
// the longest looked at: a longer one is refused without hashing it.
const (
	minTokenLength = 16
	maxTokenLength = 1024
)

// NewTokenAuthorizer builds an authorizer for clients.
func NewTokenAuthorizer(clients []Client) (*TokenAuthorizer, error) {
	a := &TokenAuthorizer{byName: map[string]*tokenClient{}}
	seen := map[[sha256.Size]byte]string{}
	names := map[string]bool{}
	for _, c := range clients {
		sum := sha256.Sum256([]byte(c.Token))
		switch {
		case c.Name == "":
			return nil, errors.New("service: a client has no name")
		case len(c.Token) < minTokenLength || len(c.Token) > maxTokenLength:
			return nil, fmt.Errorf("service: client %s: the token has %d characters; %d to %d are needed", c.Name, len(c.Token), minTokenLength, maxTokenLength)
		case c.Replica && c.Operator:
			return nil, fmt.Errorf("service: client %s: a client is a replica or an operator, not both", c.Name)
		case (len(c.Municipalities) == 0) != (c.Replica || c.Operator):
			return nil, fmt.Errorf("service: client %s: a municipal client needs municipalities, a replica or an operator none", c.Name)
		case seen[sum] != "":
			return nil, fmt.Errorf("service: clients %s and %s have the same token", seen[sum], c.Name)
		case names[c.Name]:
			return nil, fmt.Errorf("service: two clients are named %s", c.Name)
		}
		seen[sum], names[c.Name] = c.Name, true
		tlsName := c.TLSName
		if tlsName == "" {
			tlsName = c.Name
		}
		a.clients = append(a.clients, tokenClient{name: c.Name, tokenSHA256: sum, municipalities: c.Municipalities,
			replica: c.Replica, operator: c.Operator, tlsName: tlsName, limit: c.Limit})
	}
	for i := range a.clients {
		a.byName[a.clients[i].name] = &a.clients[i]
	}
	return a, nil
}

// Authorize implements Authorizer.
func (a *TokenAuthorizer) Authorize(ctx context.Context, municipality string) error {
	found, err := a.client(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(found.municipalities, municipality) {
		return status.Errorf(codes.PermissionDenied, "client %s may not act for municipality %q", found.name, municipality)
	}
	return nil
}

// Authenticate implements Authorizer.
func (a *TokenAuthorizer) Authenticate(ctx context.Context) error {
	_, err := a.client(ctx)
	return err
}

// AuthorizeReplica implements ReplicaAuthorizer: only clients configured as
// replicas.
func (a *TokenAuthorizer) AuthorizeReplica(ctx context.Context) (string, error) {
	found, err := a.client(ctx)
	if err != nil {
		return "", err
	}
	if !found.replica {
		return "", status.Errorf(codes.PermissionDenied, "client %s is not an OCSP replica", found.name)
	}
	return found.name, nil
}

// client is the caller of ctx: the client the Gate authenticated, or,
// without a Gate in front, the one whose token (and certificate) ctx
// carries.
func (a *TokenAuthorizer) client(ctx context.Context) (*tokenClient, error) {
	if c, ok := caller.From(ctx); ok {
		if found := a.byName[c.Name]; found != nil && c.Kind != caller.Local {
			return found, nil
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	p, _ := peer.FromContext(ctx)
	found, _, err := a.authenticate(md, p)
	return found, err
}

// authenticate finds the client whose bearer token md carries. When the
// connection came with a client certificate (mutual TLS), the certificate
// must name the same client (clients[].tls_name). via says how the client
// proved itself: "token" or "mtls+token".
func (a *TokenAuthorizer) authenticate(md metadata.MD, p *peer.Peer) (*tokenClient, string, error) {
	var token string
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			token = t
		}
	}
	if token == "" {
		return nil, "", status.Error(codes.Unauthenticated, `no client token: send "authorization: Bearer <token>"`)
	}
	if len(token) > maxTokenLength {
		return nil, "", status.Error(codes.Unauthenticated, "unknown client token")
	}
	sum := sha256.Sum256([]byte(token))
	var found *tokenClient
	for i := range a.clients {
		if subtle.ConstantTimeCompare(sum[:], a.clients[i].tokenSHA256[:]) == 1 {
			found = &a.clients[i]
		}
	}
	if found == nil {
		return nil, "", status.Error(codes.Unauthenticated, "unknown client token")
	}
	via := "token"
	if cert := peerCertificate(p); cert != nil {
		if !certificateNames(cert, found.tlsName) {
			return nil, "", status.Error(codes.Unauthenticated,
				"the client certificate does not name the client whose token was sent (clients[].tls_name)")
		}
		via = "mtls+token"
	}
	return found, via, nil
}

// peerCertificate is the verified certificate the client presented over
// TLS, or nil.
func peerCertificate(p *peer.Peer) *x509.Certificate {
	if p == nil {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.PeerCertificates) == 0 {
		return nil
	}
	return ti.State.PeerCertificates[0]
}

// certificateNames reports whether cert names a client: its subject common
// name or one of its DNS names is name.
func certificateNames(cert *x509.Certificate, name string) bool {
	return cert.Subject.CommonName == name || slices.Contains(cert.DNSNames, name)
}

// Open admits every caller for every municipality: for development on a
// loopback address only.
type Open struct{}

var (
	_ Authorizer        = Open{}
	_ ReplicaAuthorizer = Open{}
)

// Authenticate implements Authorizer.
func (Open) Authenticate(context.Context) error { return nil }

// Authorize implements Authorizer.
func (Open) Authorize(context.Context, string) error { return nil }

// AuthorizeReplica implements ReplicaAuthorizer.
func (Open) AuthorizeReplica(context.Context) (string, error) { return "local replica", nil }
