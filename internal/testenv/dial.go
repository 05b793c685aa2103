package testenv

import (
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shomei-pki/shomei/internal/clienttoken"
)

// Dial is a plaintext gRPC connection to addr (a CA on loopback) whose
// calls carry the bearer token, closed when the test ends.
func Dial(t testing.TB, addr, token string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(clienttoken.Bearer(token)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
