package crl

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrInvalidRequest is wrapped by every error Build and Check return for a
// bad Request (each a *FieldError). It maps to InvalidArgument at a gRPC
// boundary, though a CRL request is built by the CA itself, so in practice
// it is an internal error of the caller.
var ErrInvalidRequest = errors.New("crl: invalid request")

// ErrMismatch is wrapped by every difference Check finds between a CRL and
// what Build promises for the request (each a *MismatchError). A CRL that
// fails Check must not be published.
var ErrMismatch = errors.New("crl: CRL does not match its request")

// ErrNoPartition is wrapped by PartitionOf's errors: the certificate has
// no cRLDistributionPoints naming a partition the way ca/profile writes it.
var ErrNoPartition = errors.New("crl: certificate names no CRL partition")

// FieldError is one problem with one field of a Request.
type FieldError struct {
	Field   string // e.g. "Request.Number", "Request.Entries[3].Reason"
	Problem string
}

func (e *FieldError) Error() string { return fmt.Sprintf("crl: %s: %s", e.Field, e.Problem) }

// Is makes every FieldError match ErrInvalidRequest.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidRequest }

// MismatchError is one difference between a CRL and its request.
type MismatchError struct {
	Partition string // the request's partition name
	Problem   string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("crl: partition %s: %s", e.Partition, e.Problem)
}

// Is makes every MismatchError match ErrMismatch.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// maxProblems bounds how many problems of one kind an error lists: a
// million-entry partition with one systematic fault must not produce a
// million-line error.
const maxProblems = 10

// problems collects errors, keeping the first maxProblems of each kind and
// counting the rest.
type problems struct {
	errs    []error
	dropped map[string]int
	kept    map[string]int
}

// add records err under kind unless maxProblems of that kind are kept.
func (p *problems) add(kind string, err error) {
	if p.kept == nil {
		p.kept, p.dropped = map[string]int{}, map[string]int{}
	}
	if p.kept[kind] >= maxProblems {
		p.dropped[kind]++
		return
	}
	p.kept[kind]++
	p.errs = append(p.errs, err)
}

// err joins what was collected, with one line per kind that was cut short;
// mk makes that line's error so that it wraps the right sentinel.
func (p *problems) err(mk func(problem string) error) error {
	errs := p.errs
	for _, kind := range slices.Sorted(maps.Keys(p.dropped)) {
		errs = append(errs, mk(fmt.Sprintf("and %d more: %s", p.dropped[kind], kind)))
	}
	return errors.Join(errs...)
}
