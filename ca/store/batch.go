package store

import (
	"errors"

	"github.com/shomei-pki/shomei/ca/store/engine"
)

// Group commit. Issuance writes twice per certificate (reserve, complete),
// and each bbolt write transaction waits for an fsync. bbolt's own Batch
// waits a fixed delay for companions unless the batch fills, which makes a
// lone caller slow; here a single committer takes whatever writes are queued
// when it is free — one, or all that arrived during the previous fsync — and
// commits them in one transaction. A lone caller pays one fsync and no delay;
// concurrent callers share fsyncs.
//
// If any function of a group fails, the transaction is rolled back and each
// function runs again in a transaction of its own, so one refused issuance
// never fails or half-applies another. Functions must therefore change
// nothing outside the transaction.

// maxGroup bounds one transaction's functions.
const maxGroup = 256

// ErrClosed means the store was closed.
var ErrClosed = errors.New("store is closed")

type writeCall struct {
	fn   func(engine.Tx) error
	done chan error
}

// write runs fn in a write transaction, possibly together with others.
func (s *Store) write(fn func(engine.Tx) error) error {
	c := writeCall{fn: fn, done: make(chan error, 1)}
	s.writeMu.RLock()
	if s.writesClosed {
		s.writeMu.RUnlock()
		return ErrClosed
	}
	s.writes <- c
	s.writeMu.RUnlock()
	return <-c.done
}

// committer runs until the writes channel is closed.
func (s *Store) committer() {
	defer close(s.committerDone)
	for first := range s.writes {
		group := []writeCall{first}
	more:
		for len(group) < maxGroup {
			select {
			case c, ok := <-s.writes:
				if !ok {
					break more
				}
				group = append(group, c)
			default:
				break more
			}
		}
		s.commit(group)
	}
}

func (s *Store) commit(group []writeCall) {
	if len(group) > 1 {
		err := s.db.Update(func(tx engine.Tx) error {
			for _, c := range group {
				if err := c.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			for _, c := range group {
				c.done <- nil
			}
			return
		}
	}
	for _, c := range group {
		c.done <- s.db.Update(c.fn)
	}
}

// stopWrites refuses new writes and waits for the queued ones.
func (s *Store) stopWrites() {
	s.writeMu.Lock()
	if !s.writesClosed {
		s.writesClosed = true
		close(s.writes)
	}
	s.writeMu.Unlock()
	<-s.committerDone
}
