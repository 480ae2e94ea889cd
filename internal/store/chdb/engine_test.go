package chdb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The engine allows one data directory per process, so the tests of this
// package share one, and isolate themselves by database.
var testDir string

func TestMain(m *testing.M) {
	if os.Getenv("CHDB_TEST_CHILD") != "" {
		os.Exit(child())
	}
	d, err := os.MkdirTemp("", "chdb-test-*")
	if err != nil {
		panic(err)
	}
	testDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

func open(t *testing.T, db string) *Engine {
	t.Helper()
	e, err := Open(context.Background(), Options{Path: testDir, Database: db, Conns: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

var cols = []Column{{"id", "String"}, {"time", "DateTime64(3, 'UTC')"}, {"svc", "LowCardinality(String)"}, {"attrs", "Map(LowCardinality(String), String)"}, {"deps", "Array(String)"}, {"v", "Float64"}}

const createT = "CREATE TABLE IF NOT EXISTS t (id String, time DateTime64(3, 'UTC'), svc LowCardinality(String), attrs Map(LowCardinality(String), String), deps Array(String), v Float64) ENGINE = MergeTree ORDER BY (svc, time)"

func TestInsertAndQueryTypes(t *testing.T) {
	ctx := context.Background()
	e := open(t, "types")
	if err := e.Exec(ctx, createT, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	// "b\n\nc" would end inline insert data early: the file path keeps it.
	err := e.Insert(ctx, "t", cols, []any{[]string{"a", "b\n\nc"}, []time.Time{now, now.Add(time.Second)}, []string{"api", "db"},
		[]map[string]string{{"k": "v"}, {}}, [][]string{{"x", "y"}, {}}, []float64{1.5, 2}})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := e.Query(ctx, "SELECT id, time, svc, attrs, deps, v FROM t ORDER BY time", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id, svc string
		var tm time.Time
		var attrs map[string]string
		var deps []string
		var v float64
		if err := rows.Scan(&id, &tm, &svc, &attrs, &deps, &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%q %s %s %v %v %v", id, tm.UTC().Format(time.RFC3339Nano), svc, attrs, deps, v))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`"a" 2026-01-02T03:04:05.006Z api map[k:v] [x y] 1.5`,
		`"b\n\nc" 2026-01-02T03:04:06.006Z db map[] [] 2`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestStreamingManyBlocks(t *testing.T) {
	ctx := context.Background()
	e := open(t, "stream")
	rows, err := e.Query(ctx, "SELECT number, toString(number) FROM numbers({n:UInt64})", map[string]string{"n": "1000000"})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n, sum uint64
	for rows.Next() {
		var x uint64
		var s string
		if err := rows.Scan(&x, &s); err != nil {
			t.Fatal(err)
		}
		if s != fmt.Sprint(x) {
			t.Fatalf("row %d: %q", x, s)
		}
		n++
		sum += x
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 1000000 || sum != 999999*1000000/2 {
		t.Errorf("read %d rows summing %d", n, sum)
	}
}

func TestAbandonedStreamLeavesConnectionUsable(t *testing.T) {
	ctx := context.Background()
	e, err := Open(ctx, Options{Path: testDir, Database: "abandon", Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rows, err := e.Query(ctx, "SELECT number FROM numbers(10000000)", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatal("no first row")
	}
	rows.Close() // before the end: cancels the stream
	// The only connection must answer correctly afterwards.
	r2, err := e.Query(ctx, "SELECT 42", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	var v uint8
	if !r2.Next() {
		t.Fatal("no row")
	}
	if err := r2.Scan(&v); err != nil || v != 42 {
		t.Errorf("after an abandoned stream: %v, %v", v, err)
	}
}

func TestErrorThenQuery(t *testing.T) {
	ctx := context.Background()
	e, err := Open(ctx, Options{Path: testDir, Database: "errs", Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// A query that fails after producing output.
	rows, err := e.Query(ctx, "SELECT number, throwIf(number = 200000, 'boom') FROM numbers(300000)", nil)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
	}
	if err == nil {
		t.Fatal("want an error from throwIf")
	}
	r2, err := e.Query(ctx, "SELECT 'fresh'", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	var got []string
	for r2.Next() {
		var s string
		if err := r2.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if fmt.Sprint(got) != "[fresh]" {
		t.Errorf("after a failed query the next result is %q", got)
	}
}

func TestConcurrentQueriesAndInserts(t *testing.T) {
	ctx := context.Background()
	e := open(t, "conc")
	if err := e.Exec(ctx, createT, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 4; g++ {
		wg.Add(2)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				n := 100
				ids, ts, svc, attrs, deps, v := make([]string, n), make([]time.Time, n), make([]string, n), make([]map[string]string, n), make([][]string, n), make([]float64, n)
				for j := range ids {
					ids[j], ts[j], svc[j], attrs[j], deps[j], v[j] = fmt.Sprintf("%d-%d-%d", g, i, j), time.Now(), "s", map[string]string{}, []string{}, 1
				}
				if err := e.Insert(ctx, "t", cols, []any{ids, ts, svc, attrs, deps, v}); err != nil {
					errs <- err
					return
				}
			}
		}(g)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				rows, err := e.Query(ctx, "SELECT count() FROM t", nil)
				if err != nil {
					errs <- err
					return
				}
				for rows.Next() {
				}
				rows.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	rows, err := e.Query(ctx, "SELECT count() FROM t", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n uint64
	rows.Next()
	rows.Scan(&n)
	if n != 4000 {
		t.Errorf("%d rows, want 4000", n)
	}
}

// TestGoPanicsStillRecoverAfterConnect guards the signal handling: the
// engine installs crash handlers for SIGSEGV and friends at connect, and
// without restoring Go's a nil dereference would hang the process instead
// of becoming a recoverable panic.
func TestGoPanicsStillRecoverAfterConnect(t *testing.T) {
	open(t, "signals")
	for i := 0; i < 100; i++ {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			var p *int
			_ = *p
		}()
	}
}

// child is run in a subprocess by TestDataPersistsAcrossProcesses.
func child() int {
	ctx := context.Background()
	dir, mode := os.Getenv("CHDB_TEST_DIR"), os.Getenv("CHDB_TEST_CHILD")
	e, err := Open(ctx, Options{Path: dir, Database: "persist"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	switch mode {
	case "write":
		if err := e.Exec(ctx, createT, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		err := e.Insert(ctx, "t", cols, []any{[]string{"kept"}, []time.Time{time.Now()}, []string{"s"}, []map[string]string{{}}, [][]string{{}}, []float64{7}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if os.Getenv("CHDB_TEST_KILL") != "" {
			// Exit without closing, as a crash would.
			os.Exit(0)
		}
		e.Close()
	case "read":
		rows, err := e.Query(ctx, "SELECT id, v FROM t", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		for rows.Next() {
			var id string
			var v float64
			rows.Scan(&id, &v)
			fmt.Printf("%s=%v\n", id, v)
		}
		rows.Close()
		e.Close()
	}
	return 0
}

func TestDataPersistsAcrossProcesses(t *testing.T) {
	for _, kill := range []string{"", "1"} {
		t.Run("kill="+kill, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			run := func(mode string) string {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "CHDB_TEST_CHILD="+mode, "CHDB_TEST_DIR="+dir, "CHDB_TEST_KILL="+kill)
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				return string(out)
			}
			run("write")
			if got := run("read"); got != "kept=7\n" {
				t.Errorf("after restart read %q", got)
			}
		})
	}
}

func TestSecondDataDirectoryIsRefused(t *testing.T) {
	open(t, "first")
	_, err := Open(context.Background(), Options{Path: t.TempDir()})
	if err == nil {
		t.Fatal("a second data directory opened in one process")
	}
}
