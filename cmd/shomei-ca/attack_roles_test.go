package main

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// Tokens of TestAttackOperatorRoles.
const (
	rolesMunicipalToken = "roles-municipal-token-0123456789"
	rolesReplicaToken   = "roles-replica-token-0123456789ab"
	rolesOperatorToken  = "roles-operator-token-0123456789a"
)

// operationsMethods is every RPC of the Operations service, unary and
// streaming, as full method names, read from the generated service
// description so that a new RPC is covered without editing this test.
func operationsMethods() (unary, streams []string) {
	for _, m := range opsv1.Operations_ServiceDesc.Methods {
		unary = append(unary, "/"+opsv1.Operations_ServiceDesc.ServiceName+"/"+m.MethodName)
	}
	for _, s := range opsv1.Operations_ServiceDesc.Streams {
		streams = append(streams, "/"+opsv1.Operations_ServiceDesc.ServiceName+"/"+s.StreamName)
	}
	return unary, streams
}

// callCode calls method on conn with an empty request and returns the
// status code: a unary call, or a server stream's first message.
func callCode(t *testing.T, conn *grpc.ClientConn, method string, stream bool) codes.Code {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !stream {
		return status.Code(conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{}))
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		return status.Code(err)
	}
	if err := s.SendMsg(&emptypb.Empty{}); err != nil {
		return status.Code(err)
	}
	if err := s.CloseSend(); err != nil {
		return status.Code(err)
	}
	return status.Code(s.RecvMsg(&emptypb.Empty{}))
}

// TestAttackOperatorRoles: issue 11 "done when" 2, through the real
// binary. Every Operations RPC refuses a municipal system's token and a
// replica's token with PermissionDenied before any work, and a call without
// a token with Unauthenticated; an operator's token may call no municipal
// or replica RPC.
func TestAttackOperatorRoles(t *testing.T) {
	dir := t.TempDir()
	writeToken(t, dir, "municipal.token", rolesMunicipalToken)
	writeToken(t, dir, "replica.token", rolesReplicaToken)
	writeToken(t, dir, "operator.token", rolesOperatorToken)
	p := startCA(t, writeConfig(t, dir, "e2e-roles", `clients:
  - name: kiyose
    token_file: municipal.token
    municipalities: ["13221"]
  - name: replica-1
    token_file: replica.token
    replica: true
  - name: alice
    token_file: operator.token
    operator: true
`))
	municipal := testenv.Dial(t, p.grpc, rolesMunicipalToken)
	replica := testenv.Dial(t, p.grpc, rolesReplicaToken)
	operator := testenv.Dial(t, p.grpc, rolesOperatorToken)
	anonymous := p.conn(t)

	unary, streams := operationsMethods()
	if len(unary)+len(streams) < 12 {
		t.Fatalf("the Operations service has %d RPCs; the description was not read", len(unary)+len(streams))
	}
	type rpc struct {
		method string
		stream bool
	}
	var all []rpc
	for _, m := range unary {
		all = append(all, rpc{m, false})
	}
	for _, m := range streams {
		all = append(all, rpc{m, true})
	}
	for _, r := range all {
		t.Run(r.method, func(t *testing.T) {
			for _, c := range []struct {
				who  string
				conn *grpc.ClientConn
				want codes.Code
			}{
				{"municipal", municipal, codes.PermissionDenied},
				{"replica", replica, codes.PermissionDenied},
				{"no token", anonymous, codes.Unauthenticated},
			} {
				if got := callCode(t, c.conn, r.method, r.stream); got != c.want {
					t.Errorf("%s token: %v, want %v", c.who, got, c.want)
				}
			}
			// The operator passes the gate: whatever the RPC answers to an
			// empty request, it is not a refusal of the caller.
			if got := callCode(t, operator, r.method, r.stream); got == codes.PermissionDenied || got == codes.Unauthenticated {
				t.Errorf("operator token: %v, want the RPC to run", got)
			}
		})
	}

	// An operator is not a municipal system nor a replica.
	ctx := context.Background()
	_, err := cav1.NewCertificateAuthorityClient(operator).ListCertificates(ctx,
		&cav1.ListCertificatesRequest{MunicipalityCode: "13221", HolderId: "R-1"})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("operator ListCertificates: %v, want PermissionDenied", err)
	}
	follow, err := cav1.NewReplicationClient(operator).Follow(ctx, &cav1.FollowRequest{})
	if err == nil {
		_, err = follow.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("operator Replication.Follow: %v, want PermissionDenied", err)
	}
	if _, err := opsv1.NewOperationsClient(operator).ListKeys(ctx, &opsv1.ListKeysRequest{}); status.Code(err) == codes.PermissionDenied {
		t.Errorf("operator ListKeys: %v", err)
	}
}
