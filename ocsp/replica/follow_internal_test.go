package replica

import (
	"context"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// unreachableCA is a Replication client whose Follow waits, as gRPC does
// for a WaitForReady call while the channel cannot connect, until its
// context ends.
type unreachableCA struct {
	cav1.ReplicationClient
	waitForReady bool
}

func (c *unreachableCA) Follow(ctx context.Context, _ *cav1.FollowRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[cav1.FollowResponse], error) {
	for _, o := range opts {
		if ff, ok := o.(grpc.FailFastCallOption); ok && !ff.FailFast {
			c.waitForReady = true
		}
	}
	<-ctx.Done()
	return nil, status.Error(codes.Canceled, "latest balancer error: connection refused")
}

// TestFollowWaitsForTheCA: the Follower's call waits for the channel to
// connect (WaitForReady) rather than failing at once, but not for ever: it
// gives up after readyWait with gRPC's reason, for Run to log.
func TestFollowWaitsForTheCA(t *testing.T) {
	defer func(w time.Duration) { readyWait = w }(readyWait)
	readyWait = 50 * time.Millisecond
	st, err := Open(filepath.Join(t.TempDir(), "replica.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	client := &unreachableCA{}
	f, err := NewFollower(FollowerConfig{Store: st, Client: client, Invalidate: func(*big.Int) {}})
	if err != nil {
		t.Fatal(err)
	}
	progressed, err := f.follow(context.Background())
	if progressed || err == nil || !strings.Contains(err.Error(), "the CA has been unreachable for 50ms") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("follow with the CA unreachable: progressed %v, %v", progressed, err)
	}
	if !client.waitForReady {
		t.Error("Follow was called without WaitForReady")
	}
}
