package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	"github.com/shomei-pki/shomei/ca/ops"
	"github.com/shomei-pki/shomei/internal/clienttoken"
)

// caClient is how an operator command reaches the running CA's
// Operations service: the flags every such command takes.
type caClient struct {
	addr, tokenFile, caCert, clientCert, clientKey string
	operator                                       string
	timeout                                        time.Duration
}

// envOr is the environment variable's value, or def.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// loginName is $USER, else the name of the process's user.
func loginName() string {
	if v := os.Getenv("USER"); v != "" {
		return v
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// register adds the connection flags to a command group, for it and its
// subcommands.
func (c *caClient) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.addr, "ca", envOr("SHOMEI_CA", "127.0.0.1:8443"), "the running CA's gRPC address, host:port (default $SHOMEI_CA)")
	fs.StringVar(&c.tokenFile, "token-file", os.Getenv("SHOMEI_TOKEN_FILE"), "file whose first line is the operator's bearer token (default $SHOMEI_TOKEN_FILE; not needed when the CA has no clients configured)")
	fs.StringVar(&c.caCert, "ca-cert", os.Getenv("SHOMEI_CA_CERT"), "PEM certificate(s) to verify the CA's TLS certificate with (server.tls); without it the connection is plaintext")
	fs.StringVar(&c.clientCert, "client-cert", "", "PEM client certificate for mutual TLS (server.tls.client_ca_file); it names the operator whose token is sent")
	fs.StringVar(&c.clientKey, "client-key", "", "the client certificate's private key (PEM, mode 0600)")
	fs.StringVar(&c.operator, "operator", envOr("SHOMEI_OPERATOR", loginName()), "your name, on a development CA with no clients configured (default $SHOMEI_OPERATOR, else your login name); with clients configured the token says who you are")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit of each call to the CA (streams: of waiting for the next message)")
}

// dial connects to the CA. The returned context carries the operator's
// name for a development CA; close releases the connection.
func (c *caClient) dial(ctx context.Context) (opsv1.OperationsClient, context.Context, func(), error) {
	if c.timeout <= 0 {
		return nil, nil, nil, errors.New("--timeout must be positive")
	}
	opts, err := clienttoken.Dial{TokenFile: c.tokenFile, CAFile: c.caCert, CertFile: c.clientCert, KeyFile: c.clientKey}.Options()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--token-file / --ca-cert / --client-cert / --client-key: %w", err)
	}
	conn, err := grpc.NewClient(c.addr, opts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--ca %s: %w", c.addr, err)
	}
	if c.operator != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, ops.OperatorHeader, c.operator)
	}
	return opsv1.NewOperationsClient(conn), ctx, func() { conn.Close() }, nil
}

// call runs one unary call under --timeout.
func (c *caClient) call(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.explain(fn(ctx))
}

// explain turns the gRPC errors an operator meets into what to do.
func (c *caClient) explain(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("the CA at %s is unreachable (is shomei-ca running? --ca, --ca-cert): %s", c.addr, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("the CA at %s did not answer within --timeout %v", c.addr, c.timeout)
	case codes.Unauthenticated:
		return fmt.Errorf("the CA refused the credentials (--token-file): %s", st.Message())
	case codes.PermissionDenied:
		return fmt.Errorf("permission denied: %s (an operator's token is needed)", st.Message())
	}
	return fmt.Errorf("%s: %s", st.Code(), st.Message())
}

// operatorGroup is a command group that talks to the running CA: it and
// its subcommands take the connection flags.
func operatorGroup(cmd *cobra.Command, c *caClient) *cobra.Command {
	c.register(cmd.PersistentFlags())
	return cmd
}
