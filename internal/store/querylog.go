package store

import (
	"context"
	"maps"
	"slices"
	"sync"
)

// QueryRecord is one read the store ran: its name, its SQL and its
// parameters, enough for a reviewer to run it again (clickhouse-client
// --param_NAME=VALUE, or any client that binds {name:Type} parameters)
// against the same database and get the same rows.
type QueryRecord struct {
	Name     string            `json:"name"`
	Database string            `json:"database"`
	SQL      string            `json:"sql"`
	Params   map[string]string `json:"params,omitempty"`
}

// QueryLog collects the reads run under a context from RecordQueries. It
// is safe for concurrent use: an analysis runs its queries in parallel.
type QueryLog struct {
	mu      sync.Mutex
	records []QueryRecord
}

// Records returns the reads recorded so far, in the order they started.
func (l *QueryLog) Records() []QueryRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}

func (l *QueryLog) add(r QueryRecord) {
	l.mu.Lock()
	l.records = append(l.records, r)
	l.mu.Unlock()
}

type queryLogKey struct{}

// RecordQueries returns a context under which every read of the store is
// also appended to the returned log. Evidence that cites a figure cites
// the queries that produced it this way, without each query method having
// to return its SQL.
func RecordQueries(ctx context.Context) (context.Context, *QueryLog) {
	l := &QueryLog{}
	return context.WithValue(ctx, queryLogKey{}, l), l
}

// record appends a read to ctx's log, if it has one.
func (s *Store) record(ctx context.Context, name, q string, params map[string]string) {
	if l, ok := ctx.Value(queryLogKey{}).(*QueryLog); ok {
		l.add(QueryRecord{Name: name, Database: s.db, SQL: q, Params: maps.Clone(params)})
	}
}
