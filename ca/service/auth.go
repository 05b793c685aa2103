package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Client is a municipal system and the municipalities it acts for, or an
// OCSP replica (Replica, no municipalities).
type Client struct {
	Name           string
	Token          string
	Municipalities []string
	Replica        bool
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
}

type tokenClient struct {
	name           string
	tokenSHA256    [sha256.Size]byte
	municipalities []string
	replica        bool
}

var (
	_ Authorizer        = (*TokenAuthorizer)(nil)
	_ ReplicaAuthorizer = (*TokenAuthorizer)(nil)
)

// minTokenLength is the shortest bearer token accepted.
const minTokenLength = 16

// NewTokenAuthorizer builds an authorizer for clients.
func NewTokenAuthorizer(clients []Client) (*TokenAuthorizer, error) {
	a := &TokenAuthorizer{}
	for _, c := range clients {
		switch {
		case c.Name == "":
			return nil, errors.New("service: a client has no name")
		case len(c.Token) < minTokenLength:
			return nil, fmt.Errorf("service: client %s: the token has %d characters; at least %d are needed", c.Name, len(c.Token), minTokenLength)
		case (len(c.Municipalities) == 0) != c.Replica:
			return nil, fmt.Errorf("service: client %s: a municipal client needs municipalities, a replica none", c.Name)
		}
		a.clients = append(a.clients, tokenClient{name: c.Name, tokenSHA256: sha256.Sum256([]byte(c.Token)), municipalities: c.Municipalities, replica: c.Replica})
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

// client finds the caller by its bearer token.
func (a *TokenAuthorizer) client(ctx context.Context) (*tokenClient, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var token string
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			token = t
		}
	}
	if token == "" {
		return nil, status.Error(codes.Unauthenticated, `no client token: send "authorization: Bearer <token>"`)
	}
	sum := sha256.Sum256([]byte(token))
	var found *tokenClient
	for i := range a.clients {
		if subtle.ConstantTimeCompare(sum[:], a.clients[i].tokenSHA256[:]) == 1 {
			found = &a.clients[i]
		}
	}
	if found == nil {
		return nil, status.Error(codes.Unauthenticated, "unknown client token")
	}
	return found, nil
}

// Open admits every caller for every municipality: for development on a
// loopback address only.
type Open struct{}

var (
	_ Authorizer        = Open{}
	_ ReplicaAuthorizer = Open{}
)

// Authorize implements Authorizer.
func (Open) Authorize(context.Context, string) error { return nil }

// AuthorizeReplica implements ReplicaAuthorizer.
func (Open) AuthorizeReplica(context.Context) (string, error) { return "local replica", nil }
