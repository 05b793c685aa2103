package server

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"
)

// worker is a gRPC service whose Do works until release is closed.
type worker struct{ entered, release chan struct{} }

const workMethod = "/shomei.test.Work/Do"

var workDesc = grpc.ServiceDesc{ServiceName: "shomei.test.Work", HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Do", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		if err := dec(new(emptypb.Empty)); err != nil {
			return nil, err
		}
		w := srv.(*worker)
		close(w.entered)
		select {
		case <-w.release:
			return new(emptypb.Empty), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}}}

// TestAttackStopCutsIdleCalls (issue 13): at a stop, the calls that do no
// work (a unary call whose request never comes, a health Watch, a
// reflection stream) do not hold the graceful stop, which waits for the
// call that works and lets it finish: with a 10-minute shutdown timeout,
// Run returns once the work is released, the work's call succeeds, the
// idle ones end with an error.
func TestAttackStopCutsIdleCalls(t *testing.T) {
	w := &worker{entered: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{GRPCListen: "127.0.0.1:0", ShutdownTimeout: 10 * time.Minute,
			Register: func(s *grpc.Server) { s.RegisterService(&workDesc, w) },
			Ready:    func(g, _ net.Addr) { ready <- g }})
	}()
	addr := <-ready
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, ccancel := context.WithCancel(context.Background())
	defer ccancel()

	work := make(chan error, 1)
	go func() { work <- conn.Invoke(cctx, workMethod, new(emptypb.Empty), new(emptypb.Empty)) }()
	<-w.entered
	var idle []grpc.ClientStream
	for _, method := range []string{workMethod, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"} {
		s, err := conn.NewStream(cctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, s)
	}
	watch, err := healthpb.NewHealthClient(conn).Watch(cctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}

	cancel() // the stop
	// Past stalledGrace the idle calls are all that keeps the stop
	// waiting besides the work, which must not be cut.
	time.Sleep(stalledGrace + 500*time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a call was working", err)
	case err := <-work:
		t.Fatalf("the working call ended (%v) before it was released", err)
	default:
	}
	close(w.release)
	if err := <-work; err != nil {
		t.Errorf("the working call: %v, want it finished", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(time.Minute): // well under the 10-minute timeout
		t.Fatal("Run still waits for the idle calls a minute after the work ended")
	}
	for _, s := range idle {
		if err := s.RecvMsg(new(emptypb.Empty)); err == nil {
			t.Error("an idle call got an answer")
		}
	}
	ended := false
	for range 3 { // a last NOT_SERVING update may come first
		if _, err := watch.Recv(); err != nil {
			ended = true
			break
		}
	}
	if !ended {
		t.Error("the health watch goes on after the stop")
	}
}
