package ops

import (
	"context"
	"errors"
	"strings"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	"github.com/shomei-pki/shomei/ca/caller"
)

// Server is the Operations service: its three parts' methods.
type Server struct {
	opsv1.UnsafeOperationsServer
	*Keys
	*Approvals
	*Records
}

var _ opsv1.OperationsServer = (*Server)(nil)

// New puts the three parts together.
func New(keys *Keys, approvals *Approvals, records *Records) (*Server, error) {
	if keys == nil || approvals == nil || records == nil {
		return nil, errors.New("ops: the keys, approvals and records parts are all required")
	}
	return &Server{Keys: keys, Approvals: approvals, Records: records}, nil
}

// OperatorHeader is the metadata a caller on a development CA (no clients
// configured, loopback only) names itself with; shomeictl sends its
// --operator flag there. With clients configured it is ignored: the
// operator is the authenticated client.
const OperatorHeader = "x-shomei-operator"

// localPrefix starts the name of an operator on a development CA.
const localPrefix = "local:"

// samePerson: operator names a and b may name one person — equal but for
// case, or for localPrefix (a proposal made while the CA ran as a
// development CA, approved after it was restarted with clients
// configured, or the other way round). Approvals must come from
// different people (R-K1), so any doubt counts as the same.
func samePerson(a, b string) bool {
	return strings.EqualFold(strings.TrimPrefix(a, localPrefix), strings.TrimPrefix(b, localPrefix))
}

// maxOperatorName bounds an operator's name from OperatorHeader.
const maxOperatorName = 64

// Operator is the operator calling: the authenticated operator client's
// name or, on a development CA, the name in OperatorHeader. Any other
// caller is PermissionDenied (the gate refuses them first; this holds
// without it).
func Operator(ctx context.Context) (string, error) {
	c, ok := caller.From(ctx)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "the call was not authenticated")
	}
	switch c.Kind {
	case caller.Operator:
		return c.Name, nil
	case caller.Local:
		md, _ := metadata.FromIncomingContext(ctx)
		vals := md.Get(OperatorHeader)
		if len(vals) != 1 || vals[0] == "" {
			return "", status.Errorf(codes.InvalidArgument,
				"%s: a development CA (no clients configured) needs the operator's name in this metadata (shomeictl --operator)", OperatorHeader)
		}
		name := vals[0]
		if len(name) > maxOperatorName || strings.IndexFunc(name, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' }) >= 0 {
			return "", status.Errorf(codes.InvalidArgument, "%s: 1 to %d printable ASCII characters without spaces", OperatorHeader, maxOperatorName)
		}
		return localPrefix + name, nil
	}
	return "", status.Errorf(codes.PermissionDenied, "%s is not an operator", c)
}
