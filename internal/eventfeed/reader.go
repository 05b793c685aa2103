package eventfeed

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// Record is one event of a feed.
type Record struct {
	// Line is its 1-based line number.
	Line int
	// Request is the event.
	Request *cav1.ReportEventRequest
}

// Reader reads a feed line by line, skipping blank and comment lines. It
// keeps going after a malformed line.
type Reader struct {
	in      *bufio.Reader
	line    int // lines read so far
	skipped int // blank and comment lines among them
	done    bool
}

// NewReader reads a feed from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{in: bufio.NewReaderSize(r, MaxLineLength+2)} // room for "\r\n"
}

// Next returns the next event. A malformed line returns an *Error carrying
// its line number: report it and call Next again. At the end of the feed
// Next returns io.EOF; any other error is the input's own and ends the
// feed.
func (r *Reader) Next() (Record, error) {
	for {
		raw, err := r.readLine()
		if err != nil {
			return Record{}, err
		}
		if r.line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // a byte order mark
		}
		if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || trimmed[0] == '#' {
			r.skipped++
			continue
		}
		req, derr := decode(raw)
		if derr != nil {
			derr.Line = r.line
			return Record{}, derr
		}
		return Record{Line: r.line, Request: req}, nil
	}
}

// Lines returns how many lines Next has read so far.
func (r *Reader) Lines() int { return r.line }

// Skipped returns how many of them were blank or comments.
func (r *Reader) Skipped() int { return r.skipped }

// readLine returns the next line without its line ending. A line longer
// than MaxLineLength is read to its end and returned as an *Error.
func (r *Reader) readLine() ([]byte, error) {
	if r.done {
		return nil, io.EOF
	}
	raw, err := r.in.ReadSlice('\n')
	tooLong := false
	for errors.Is(err, bufio.ErrBufferFull) {
		tooLong = true
		_, err = r.in.ReadSlice('\n')
	}
	switch {
	case errors.Is(err, io.EOF):
		r.done = true
		if len(raw) == 0 && !tooLong {
			return nil, io.EOF
		}
	case err != nil:
		r.done = true
		return nil, err
	}
	r.line++
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	if tooLong || len(raw) > MaxLineLength {
		return nil, &Error{Line: r.line, Problem: problemTooLong}
	}
	return raw, nil
}
