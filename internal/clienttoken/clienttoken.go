package clienttoken

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shomei-pki/shomei/internal/secfile"
)

// Read returns the token in the file at path: its first line, trimmed. An
// empty first line is an error, and so is a file its group or others may
// read (issue 9 item 12).
func Read(path string) (string, error) {
	b, err := secfile.Read(path, "client token file")
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	token := strings.TrimSpace(first)
	if token == "" {
		return "", fmt.Errorf("%s: %w", path, errEmpty)
	}
	return token, nil
}

var errEmpty = errors.New("the first line is empty")

// Bearer sends a client token as the CA expects it ("authorization: Bearer
// <token>"); use it with grpc.WithPerRPCCredentials. It is allowed over
// plaintext connections for a CA on loopback; the CA refuses to take
// tokens in clear off loopback (server.tls).
type Bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (Bearer) RequireTransportSecurity() bool { return false }
