package ca

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is how a refusal maps onto gRPC codes at the API boundary.
type Kind int

// The kinds of refusal.
const (
	// KindInvalid: the request itself is malformed (INVALID_ARGUMENT).
	KindInvalid Kind = iota + 1
	// KindPrecondition: well-formed, but the holder's situation forbids it
	// (FAILED_PRECONDITION).
	KindPrecondition
	// KindNotFound: no such certificate (NOT_FOUND).
	KindNotFound
	// KindPermission: the caller may not act for that municipality
	// (PERMISSION_DENIED).
	KindPermission
	// KindUnavailable: the HSM or store is unavailable right now (UNAVAILABLE).
	KindUnavailable
	// KindConflict: the request reuses an id of an earlier, different
	// request (ALREADY_EXISTS).
	KindConflict
)

// Violation is one broken rule: the request field, the rule id and what is wrong.
type Violation struct {
	Field       string
	Rule        string
	Description string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s (%s)", v.Field, v.Description, v.Rule)
}

// Error is a refused request. Every refusal changes nothing.
type Error struct {
	Kind       Kind
	Violations []Violation
	Err        error // the underlying cause, if any
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.String()
	}
	msg := strings.Join(parts, "; ")
	if e.Err != nil && len(parts) == 0 {
		msg = e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// violations collects the violations of one request.
type violations struct {
	kind Kind
	list []Violation
}

func (vs *violations) add(field, rule, format string, args ...any) {
	vs.list = append(vs.list, Violation{Field: field, Rule: rule, Description: fmt.Sprintf(format, args...)})
}

// err returns the collected violations as an *Error of the given kind, or nil.
func (vs *violations) err(kind Kind) error {
	if len(vs.list) == 0 {
		return nil
	}
	return &Error{Kind: kind, Violations: vs.list}
}

func refuse(kind Kind, field, rule, format string, args ...any) *Error {
	return &Error{Kind: kind, Violations: []Violation{{Field: field, Rule: rule, Description: fmt.Sprintf(format, args...)}}}
}

// KindOf returns the kind of a refusal, or 0 for an internal error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
