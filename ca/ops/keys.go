package ops

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
)

// Keys answers for the issuer key generations: ListKeys, ExportIssuers.
type Keys struct{}

// KeysConfig is what Keys needs.
type KeysConfig struct{}

// NewKeys makes the Keys part.
func NewKeys(KeysConfig) (*Keys, error) { return &Keys{}, nil }

// ListKeys implements opsv1.OperationsServer.
func (*Keys) ListKeys(context.Context, *opsv1.ListKeysRequest) (*opsv1.ListKeysResponse, error) {
	return nil, status.Error(codes.Unimplemented, "ListKeys is not built yet")
}

// ExportIssuers implements opsv1.OperationsServer.
func (*Keys) ExportIssuers(context.Context, *opsv1.ExportIssuersRequest) (*opsv1.ExportIssuersResponse, error) {
	return nil, status.Error(codes.Unimplemented, "ExportIssuers is not built yet")
}
