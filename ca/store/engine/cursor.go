package engine

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pgCursor walks a PostgreSQL bucket a page at a time: a page is the
// rows after (or before) the last key it returned, in key order, so rows
// written or deleted behind the cursor never make it skip or repeat one.
// Pages start small, since most walks read a key or two after a Seek, and
// double up to maxPage: a walk of a 100,000-entry CRL partition takes 34
// queries, not a hundred. Each row's key and value are copied into one
// allocation, not two.
type pgCursor struct {
	b    *pgBucket
	page []kv
	i    int
	back bool // the page runs backwards (Last, Prev)
	end  bool // the page is the last one in its direction
	size int
}

type kv struct{ k, v []byte }

const (
	firstPage = 8
	maxPage   = 4096
)

func (c *pgCursor) at() ([]byte, []byte) {
	if c.i < 0 || c.i >= len(c.page) {
		return nil, nil
	}
	e := c.page[c.i]
	return e.k, e.v
}

// load reads a page: the rows whose key is after from (or at it, when
// inclusive), or before it when back; no bound when from is nil.
func (c *pgCursor) load(from []byte, inclusive, back bool, size int) ([]byte, []byte) {
	c.page, c.i, c.back, c.end, c.size = c.page[:0], 0, back, true, size
	t := c.b.t
	if t.err != nil || t.flush(c.b.table) != nil {
		return nil, nil
	}
	op, order := ">", "ASC"
	if back {
		op, order = "<", "DESC"
	}
	if inclusive {
		op += "="
	}
	q := `SELECT k, v FROM ` + c.b.table
	args := []any{size}
	if from != nil {
		q += ` WHERE k ` + op + ` $2`
		args = append(args, from)
	}
	q += ` ORDER BY k ` + order + ` LIMIT $1`
	rows, err := t.tx.Query(t.db.ctx, q, args...)
	if err != nil {
		t.fail(fmt.Errorf("read %s: %w", c.b.table, err))
		return nil, nil
	}
	// Each row's k and v, binary bytea, copied into one allocation.
	binary := true
	for _, f := range rows.FieldDescriptions() {
		binary = binary && f.Format == pgx.BinaryFormatCode
	}
	for rows.Next() {
		var e kv
		if binary {
			raw := rows.RawValues()
			row := make([]byte, len(raw[0])+len(raw[1]))
			n := copy(row, raw[0])
			copy(row[n:], raw[1])
			e = kv{row[:n:n], row[n:]}
		} else if err := rows.Scan(&e.k, &e.v); err != nil {
			rows.Close()
			t.fail(fmt.Errorf("read %s: %w", c.b.table, err))
			c.page = c.page[:0]
			return nil, nil
		}
		c.page = append(c.page, e)
	}
	if err := rows.Err(); err != nil {
		t.fail(fmt.Errorf("read %s: %w", c.b.table, err))
		c.page = c.page[:0]
		return nil, nil
	}
	c.end = len(c.page) < size
	return c.at()
}

func (c *pgCursor) First() ([]byte, []byte) { return c.load(nil, false, false, firstPage) }
func (c *pgCursor) Last() ([]byte, []byte)  { return c.load(nil, false, true, firstPage) }
func (c *pgCursor) Seek(key []byte) ([]byte, []byte) {
	return c.load(append([]byte{}, key...), true, false, firstPage)
}

func (c *pgCursor) Next() ([]byte, []byte) { return c.step(false) }
func (c *pgCursor) Prev() ([]byte, []byte) { return c.step(true) }

// step moves one key forwards or backwards, reading the next page when
// the current one runs out.
func (c *pgCursor) step(back bool) ([]byte, []byte) {
	k, _ := c.at()
	if k == nil {
		return nil, nil // off either end: stays off, as bbolt's cursor does
	}
	if back == c.back {
		if c.i+1 < len(c.page) {
			c.i++
			return c.at()
		}
		if c.end {
			c.i = len(c.page)
			return nil, nil
		}
		return c.load(k, false, back, min(2*c.size, maxPage))
	}
	// Turning round: the neighbour on the other side.
	if c.i > 0 {
		c.page, c.i, c.end = reverse(c.page[:c.i]), 0, false
		c.back = back
		return c.at()
	}
	return c.load(k, false, back, firstPage)
}

func reverse(p []kv) []kv {
	out := make([]kv, len(p))
	for i, e := range p {
		out[len(p)-1-i] = e
	}
	return out
}
