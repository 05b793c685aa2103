package service

import (
	"context"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/caller"
)

// RefusalRecorder records a refused call (audit.Refusals).
type RefusalRecorder interface {
	Record(audit.Refusal)
}

var _ RefusalRecorder = (*audit.Refusals)(nil)

// refusedCodes are the codes that mean the CA refused the caller, as
// opposed to failing itself.
var refusedCodes = map[codes.Code]bool{
	codes.InvalidArgument: true, codes.FailedPrecondition: true, codes.NotFound: true, codes.AlreadyExists: true,
	codes.PermissionDenied: true, codes.Unauthenticated: true, codes.ResourceExhausted: true, codes.OutOfRange: true,
}

// RefusalInterceptors audit every refused call with the caller, the method,
// the code and the first broken rule and field (R-K3), never the request or
// the refusal's text. Install them inside the authenticating interceptor,
// so the caller (ca/caller) is known; a call refused before that is
// audited as "unauthenticated" when the authenticator calls Refused.
func RefusalInterceptors(rec RefusalRecorder) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			Refused(ctx, rec, info.FullMethod, err)
		}
		return resp, err
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		if err != nil {
			Refused(ss.Context(), rec, info.FullMethod, err)
		}
		return err
	}
	return unary, stream
}

// Refused records err for method if it is a refusal.
// Health checks and reflection (/grpc.…) are not the CA's to audit.
func Refused(ctx context.Context, rec RefusalRecorder, method string, err error) {
	st := status.Convert(err)
	if !refusedCodes[st.Code()] || strings.HasPrefix(method, "/grpc.") {
		return
	}
	f := audit.Refusal{Method: knownMethod(method), Code: st.Code().String()}
	if c, ok := caller.From(ctx); ok {
		f.Caller = c.String()
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) > 0 {
			f.Rule, f.Field = br.FieldViolations[0].Reason, br.FieldViolations[0].Field
			break
		}
	}
	rec.Record(f)
}

// knownMethod is method when it names a method of a service compiled into
// this binary, and "unknown" otherwise: the gate refuses calls before
// grpc-go has looked the method up, and a caller's invented method names
// must not become audit records or metric labels without bound.
func knownMethod(method string) string {
	svc, name, ok := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if !ok || len(method) > 200 {
		return "unknown"
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return "unknown"
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok || sd.Methods().ByName(protoreflect.Name(name)) == nil {
		return "unknown"
	}
	return method
}
