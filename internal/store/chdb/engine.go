// Package chdb is the embedded ClickHouse engine: libchdb.so loaded into the
// process, with data in a local directory. It speaks the same SQL as a
// ClickHouse server; values travel as the engine's own {name:Type}
// parameters and rows as ClickHouse's Native format, encoded and decoded by
// clickhouse-go's column types so that both engines convert Go values alike.
package chdb

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// Options configure an embedded engine.
type Options struct {
	// Lib is the path of libchdb.so; empty means LibPath("").
	Lib string
	// Path is the data directory. It is created if missing.
	Path string
	// Database is created if missing and made the current database of
	// every connection; empty means "default".
	Database string
	// Conns is the number of connections, and so of queries running at
	// once; each blocked query holds an OS thread. Default 4.
	Conns int
	// Logger receives engine events; nil discards them.
	Logger *slog.Logger
}

// Engine is an open embedded ClickHouse. It is safe for concurrent use.
type Engine struct {
	path string
	db   string
	log  *slog.Logger
	tmp  string     // tmp holds insert files; inside path so it is on the same disk.
	pool chan *conn // pool holds the idle connections.

	mu     sync.Mutex // mu guards all and closed.
	all    []*conn
	closed bool
}

// Open loads the library (once per process) and connects to the data
// directory. Only one data directory can be open per process.
func Open(ctx context.Context, opt Options) (*Engine, error) {
	if opt.Conns <= 0 {
		opt.Conns = 4
	}
	if opt.Database == "" {
		opt.Database = "default"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Path == "" {
		return nil, fmt.Errorf("open embedded store: no data directory given")
	}
	if !validIdent(opt.Database) {
		return nil, fmt.Errorf("open embedded store: invalid database name %q", opt.Database)
	}
	abs, err := filepath.Abs(opt.Path)
	if err != nil {
		return nil, fmt.Errorf("open embedded store: %w", err)
	}
	tmp := filepath.Join(abs, "correlator-tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, fmt.Errorf("open embedded store: %w", err)
	}
	if err := load(LibPath(opt.Lib)); err != nil {
		return nil, err
	}
	e := &Engine{path: abs, db: opt.Database, log: opt.Logger, tmp: tmp, pool: make(chan *conn, opt.Conns)}
	for i := 0; i < opt.Conns; i++ {
		c, err := connect(abs)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.all = append(e.all, c)
		if i == 0 && opt.Database != "default" {
			if _, _, err := c.query("CREATE DATABASE IF NOT EXISTS "+opt.Database, "Native", nil); err != nil {
				e.pool <- c
				e.Close()
				return nil, fmt.Errorf("open embedded store: create database: %w", err)
			}
		}
		if opt.Database != "default" {
			if _, _, err := c.query("USE "+opt.Database, "Native", nil); err != nil {
				e.pool <- c
				e.Close()
				return nil, fmt.Errorf("open embedded store: use database: %w", err)
			}
		}
		e.pool <- c
	}
	e.log.Debug("embedded store open", "path", abs, "database", opt.Database, "conns", opt.Conns)
	return e, nil
}

// Path is the data directory.
func (e *Engine) Path() string { return e.path }

// Database is the current database of every connection.
func (e *Engine) Database() string { return e.db }

// acquire takes an idle connection, waiting for one or for ctx.
func (e *Engine) acquire(ctx context.Context) (*conn, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case c := <-e.pool:
		if c.dirty {
			// Drain whatever a failed query left behind.
			_, _, _ = c.query("SELECT 1", "Native", nil)
			c.dirty = false
		}
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *Engine) release(c *conn) { e.pool <- c }

// Exec runs one statement that returns no rows. The statement text must be
// a constant of the program; values go in params. A running statement cannot
// be interrupted: ctx is honoured only while waiting for a connection.
func (e *Engine) Exec(ctx context.Context, query string, params map[string]string) error {
	c, err := e.acquire(ctx)
	if err != nil {
		return err
	}
	defer e.release(c)
	_, _, err = c.query(query, "Native", params)
	return err
}

// Close closes every connection, after queries in flight have finished.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	all := e.all
	e.mu.Unlock()
	for range all {
		c := <-e.pool
		c.close()
	}
	return nil
}

func validIdent(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
