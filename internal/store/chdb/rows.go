package chdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// serverContext makes clickhouse-go's columns read and write time zone-less
// DateTime values as UTC, which is what the engine uses.
var serverContext = &column.ServerContext{Timezone: time.UTC}

// Rows is the result of Query: rows decoded from the engine's Native output,
// fetched chunk by chunk. It holds a connection until Close.
type Rows struct {
	e      *Engine
	c      *conn
	s      *stream
	buf    []byte // buf is the undecoded rest of the current chunk.
	block  *proto.Block
	row    int // row is the current row in block, -1 before the first.
	err    error
	done   bool
	closed bool
}

// Query runs a statement and streams its rows. Rows must be closed.
func (e *Engine) Query(ctx context.Context, query string, params map[string]string) (*Rows, error) {
	c, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.stream(query, "Native", params)
	if err != nil && strings.Contains(err.Error(), "Streaming query is not supported") {
		// Some statements (EXPLAIN, SHOW) cannot stream: run them whole.
		out, _, err := c.query(query, "Native", params)
		if err != nil {
			e.release(c)
			return nil, err
		}
		return &Rows{e: e, c: c, buf: out, done: true, row: -1}, nil
	}
	if err != nil {
		e.release(c)
		return nil, err
	}
	return &Rows{e: e, c: c, s: s, row: -1}, nil
}

// Next advances to the next row.
func (r *Rows) Next() bool {
	if r.err != nil || r.closed {
		return false
	}
	for {
		if r.block != nil && r.row+1 < r.block.Rows() {
			r.row++
			return true
		}
		if len(r.buf) == 0 {
			if r.done {
				return false
			}
			chunk, err := r.s.next()
			if err != nil {
				r.err = err
				return false
			}
			if len(chunk) == 0 {
				r.done = true
				return false
			}
			r.buf = chunk
		}
		b := proto.NewBlock()
		b.ServerContext = serverContext
		rd := bytes.NewReader(r.buf)
		if err := b.Decode(chproto.NewReader(rd), 0); err != nil {
			r.err = fmt.Errorf("decode native block: %w", err)
			return false
		}
		r.buf = r.buf[len(r.buf)-rd.Len():]
		r.block, r.row = b, -1
	}
}

// Scan copies the current row into dest, one pointer per column, with
// clickhouse-go's conversions.
func (r *Rows) Scan(dest ...any) error {
	if r.block == nil || r.row < 0 {
		return errors.New("scan called without a row")
	}
	if len(dest) != len(r.block.Columns) {
		return fmt.Errorf("scan: %d destinations for %d columns", len(dest), len(r.block.Columns))
	}
	for i, c := range r.block.Columns {
		if err := c.ScanRow(dest[i], r.row); err != nil {
			return fmt.Errorf("scan column %s: %w", c.Name(), err)
		}
	}
	return nil
}

// Columns names the result's columns once a row has been read.
func (r *Rows) Columns() []string {
	if r.block == nil {
		return nil
	}
	return r.block.ColumnsNames()
}

// Err is the error that stopped Next, if any.
func (r *Rows) Err() error { return r.err }

// Close ends the stream and returns the connection.
func (r *Rows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.s != nil {
		if !r.done && r.err == nil {
			r.s.cancel()
			r.c.dirty = true
		}
		r.s.close()
	}
	r.e.release(r.c)
	return nil
}

// Column describes one column of an insert.
type Column struct{ Name, Type string }

// Insert appends rows to table. data holds one slice per column (for
// example []string, []time.Time, []map[string]string), all of one length.
//
// The rows go as one Native block through a file that the engine reads with
// INSERT ... SELECT FROM file(): binary data inline in the statement would be
// cut at the first blank line by the engine, silently.
func (e *Engine) Insert(ctx context.Context, table string, cols []Column, data []any) error {
	if len(cols) != len(data) {
		return fmt.Errorf("insert into %s: %d columns, %d data slices", table, len(cols), len(data))
	}
	b := proto.NewBlock()
	b.ServerContext = serverContext
	names := ""
	for i, c := range cols {
		if err := b.AddColumn(c.Name, column.Type(c.Type)); err != nil {
			return fmt.Errorf("insert into %s: column %s: %w", table, c.Name, err)
		}
		if _, err := b.Columns[i].Append(data[i]); err != nil {
			return fmt.Errorf("insert into %s: column %s: %w", table, c.Name, err)
		}
		if i > 0 {
			names += ", "
		}
		names += c.Name
	}
	if b.Rows() == 0 {
		return nil
	}
	var buf chproto.Buffer
	if err := b.Encode(&buf, 0); err != nil {
		return fmt.Errorf("insert into %s: encode: %w", table, err)
	}
	f, err := os.CreateTemp(e.tmp, "insert-*.native")
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, bytes.NewReader(buf.Buf)); err != nil {
		f.Close()
		return fmt.Errorf("insert into %s: write block: %w", table, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("insert into %s: write block: %w", table, err)
	}
	// table and names come from the store's closed schema, never from input.
	q := "INSERT INTO " + table + " (" + names + ") SELECT " + names + " FROM file({path:String}, 'Native')"
	return e.Exec(ctx, q, map[string]string{"path": f.Name()})
}
