// Package chserver is the ClickHouse server engine: a clickhouse-go/v2
// connection pool over the native protocol, addressed by a DSN such as
// clickhouse://user:password@host:9000/db?secure=true.
package chserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Engine is a connection pool to one ClickHouse server or cluster node.
type Engine struct {
	conn driver.Conn
	db   string
}

// Column describes one column of an insert.
type Column struct{ Name, Type string }

// Open parses dsn (clickhouse-go's DSN syntax: user, password, secure,
// skip_verify, dial_timeout, compress, ...) and checks the server answers.
func Open(ctx context.Context, dsn string) (*Engine, error) {
	opt, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		// The DSN may hold a password: never echo it.
		return nil, fmt.Errorf("parse clickhouse DSN: %s", redactDSNError(err))
	}
	conn, err := clickhouse.Open(opt)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse at %s: %w", strings.Join(opt.Addr, ","), err)
	}
	db := opt.Auth.Database
	if db == "" {
		db = "default"
	}
	return &Engine{conn: conn, db: db}, nil
}

func redactDSNError(err error) string {
	// ParseDSN errors come from url.Parse, whose messages quote the URL.
	msg := err.Error()
	if i := strings.Index(msg, "\""); i >= 0 {
		return msg[:i] + "(DSN redacted)"
	}
	return msg
}

// Database is the DSN's database.
func (e *Engine) Database() string { return e.db }

func withParams(ctx context.Context, params map[string]string) context.Context {
	if len(params) == 0 {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters(params)))
}

// Exec runs one statement with server-side parameters.
func (e *Engine) Exec(ctx context.Context, query string, params map[string]string) error {
	if err := e.conn.Exec(withParams(ctx, params), query); err != nil {
		return err
	}
	return nil
}

// Query runs a statement and returns its rows.
func (e *Engine) Query(ctx context.Context, query string, params map[string]string) (driver.Rows, error) {
	return e.conn.Query(withParams(ctx, params), query)
}

// Insert sends one batch, column by column.
func (e *Engine) Insert(ctx context.Context, table string, cols []Column, data []any) error {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	// table and names come from the store's closed schema, never from input.
	batch, err := e.conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+strings.Join(names, ", ")+")")
	if err != nil {
		return err
	}
	for i := range cols {
		if err := batch.Column(i).Append(data[i]); err != nil {
			batch.Abort()
			return fmt.Errorf("column %s: %w", cols[i].Name, err)
		}
	}
	return batch.Send()
}

// Close closes the pool.
func (e *Engine) Close() error { return e.conn.Close() }
