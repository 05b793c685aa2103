package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// errStreamIdle: the CA sent nothing for --timeout.
var errStreamIdle = errors.New("stream idle")

// stream runs one streaming call: --timeout bounds the wait for each
// message, not the whole stream; fn calls alive at every message.
func (c *caClient) stream(ctx context.Context, fn func(ctx context.Context, alive func()) error) error {
	if c.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(c.timeout, func() { cancel(errStreamIdle) })
	defer idle.Stop()
	err := fn(ctx, func() { idle.Reset(c.timeout) })
	if err != nil && errors.Is(context.Cause(ctx), errStreamIdle) {
		return fmt.Errorf("the CA at %s sent nothing for --timeout %v", c.addr, c.timeout)
	}
	return c.explain(err)
}
