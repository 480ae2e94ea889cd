package store

import (
	"context"
	"strings"

	"github.com/correlator/correlator/internal/store/chdb"
	"github.com/correlator/correlator/internal/store/chserver"
)

// Open opens the store named by the options: a ClickHouse server when dsn
// is set, else the embedded engine in dataDir. It runs the migrations.
func Open(ctx context.Context, dsn, dataDir string, opt Options, eopt chdb.Options) (*Store, error) {
	var eng Engine
	if dsn != "" {
		e, err := chserver.Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		if opt.Database == "" {
			opt.Database = e.Database()
		}
		eng = serverEngine{e}
	} else {
		eopt.Path = dataDir
		if eopt.Logger == nil {
			eopt.Logger = opt.Logger
		}
		e, err := chdb.Open(ctx, eopt)
		if err != nil {
			return nil, err
		}
		if opt.Database == "" {
			opt.Database = e.Database()
		}
		eng = embeddedEngine{e}
	}
	s, err := New(eng, opt)
	if err != nil {
		eng.Close()
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		eng.Close()
		return nil, err
	}
	return s, nil
}

// IsServerDSN reports whether s looks like a ClickHouse DSN.
func IsServerDSN(s string) bool {
	return strings.HasPrefix(s, "clickhouse://") || strings.HasPrefix(s, "tcp://")
}

// embeddedEngine adapts chdb.Engine to Engine.
type embeddedEngine struct{ *chdb.Engine }

func (e embeddedEngine) Query(ctx context.Context, q string, p map[string]string) (Rows, error) {
	r, err := e.Engine.Query(ctx, q, p)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (e embeddedEngine) Insert(ctx context.Context, table string, cols []Column, data []any) error {
	cc := make([]chdb.Column, len(cols))
	for i, c := range cols {
		cc[i] = chdb.Column(c)
	}
	return e.Engine.Insert(ctx, table, cc, data)
}

// serverEngine adapts chserver.Engine to Engine.
type serverEngine struct{ *chserver.Engine }

func (e serverEngine) Query(ctx context.Context, q string, p map[string]string) (Rows, error) {
	r, err := e.Engine.Query(ctx, q, p)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (e serverEngine) Insert(ctx context.Context, table string, cols []Column, data []any) error {
	cc := make([]chserver.Column, len(cols))
	for i, c := range cols {
		cc[i] = chserver.Column(c)
	}
	return e.Engine.Insert(ctx, table, cc, data)
}
