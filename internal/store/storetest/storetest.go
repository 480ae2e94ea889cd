// Package storetest opens stores for tests: the embedded engine always,
// and a ClickHouse server when CORRELATOR_TEST_CLICKHOUSE_DSN is set. Every
// test gets a database of its own, so tests cannot see each other's rows.
package storetest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/chdb"
)

// DSNEnv names the variable holding a ClickHouse server DSN for tests.
const DSNEnv = "CORRELATOR_TEST_CLICKHOUSE_DSN"

var (
	dirOnce sync.Once
	dir     string
	seq     atomic.Int64
)

// embeddedDir is the one data directory of this test process: the engine
// allows one directory per process, so tests are isolated by database.
func embeddedDir() string {
	dirOnce.Do(func() {
		d, err := os.MkdirTemp("", "correlator-test-*")
		if err != nil {
			panic(err)
		}
		dir = d
	})
	return dir
}

func dbName(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("t%d_%d_%s", time.Now().Unix()%100000, seq.Add(1), name)
}

// Embedded opens a migrated embedded store in a fresh database.
func Embedded(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, "", embeddedDir(), store.Options{}, chdb.Options{Database: dbName(t), Conns: 2})
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// EmbeddedDir is the data directory the embedded test stores share.
func EmbeddedDir() string { return embeddedDir() }

// Server opens a migrated store on the server named by
// CORRELATOR_TEST_CLICKHOUSE_DSN in a fresh database, or skips the test.
func Server(t testing.TB) *store.Store {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		t.Skip(DSNEnv + " not set")
	}
	ctx := context.Background()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %s: invalid URL", DSNEnv)
	}
	db := dbName(t)
	admin, err := store.Open(ctx, dsn, "", store.Options{}, chdb.Options{})
	if err != nil {
		t.Fatalf("open server store: %v", err)
	}
	if err := admin.Engine().Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db, nil); err != nil {
		t.Fatalf("create database: %v", err)
	}
	u.Path = "/" + db
	s, err := store.Open(ctx, u.String(), "", store.Options{}, chdb.Options{})
	if err != nil {
		t.Fatalf("open server store: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		_ = admin.Engine().Exec(ctx, "DROP DATABASE IF EXISTS "+db, nil)
		admin.Close()
	})
	return s
}

// Engines lists the engines a contract test runs on.
var Engines = []struct {
	Name string
	Open func(testing.TB) *store.Store
}{
	{"embedded", Embedded},
	{"server", Server},
}

// Cleanup removes the shared embedded directory; call it from TestMain.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(filepath.Clean(dir))
	}
}
