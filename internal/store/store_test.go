package store_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Cleanup()
	os.Exit(code)
}

// forEachEngine runs a contract test on every engine: the embedded one
// always, the server one when CORRELATOR_TEST_CLICKHOUSE_DSN is set.
func forEachEngine(t *testing.T, f func(t *testing.T, s *store.Store)) {
	for _, e := range storetest.Engines {
		t.Run(e.Name, func(t *testing.T) { f(t, e.Open(t)) })
	}
}

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func TestMigrateIsIdempotent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for i := 0; i < 2; i++ {
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("migrate run %d: %v", i+2, err)
			}
		}
		rows, err := s.Engine().Query(ctx, "SELECT version, count() FROM correlator_migrations FINAL GROUP BY version", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var v uint32
			var c uint64
			if err := rows.Scan(&v, &c); err != nil {
				t.Fatal(err)
			}
			if c != 1 {
				t.Errorf("migration %d recorded %d times", v, c)
			}
			n++
		}
		if n != store.SchemaVersion() {
			t.Errorf("recorded %d migrations, want %d", n, store.SchemaVersion())
		}
	})
}

func TestParametersRoundTrip(t *testing.T) {
	// Values that would break or inject SQL if they were spliced into text.
	values := []string{"plain", `back\slash`, "tab\there", "new\nline", "quote'q", `\'`, "a\n\nDROP TABLE changes", `\n`, "nul\x00byte", "unicode ✓ ü", "'); DROP TABLE errors; --"}
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, v := range values {
			rows, err := s.Engine().Query(ctx, "SELECT {s:String}, {a:Array(String)}", map[string]string{"s": store.ParamString(v), "a": store.ParamStrings([]string{v, "x"})})
			if err != nil {
				t.Fatalf("%q: %v", v, err)
			}
			got := 0
			for rows.Next() {
				var s string
				var a []string
				if err := rows.Scan(&s, &a); err != nil {
					t.Fatal(err)
				}
				if s != v || !reflect.DeepEqual(a, []string{v, "x"}) {
					t.Errorf("round trip of %q gave %q and %q", v, s, a)
				}
				got++
			}
			rows.Close()
			if got != 1 {
				t.Errorf("%q: %d rows", v, got)
			}
		}
		if n, err := s.Count(ctx, "changes"); err != nil || n != 0 {
			t.Errorf("changes table after injection attempts: %d rows, %v", n, err)
		}
	})
}

func sampleBatch() *event.Batch {
	return &event.Batch{
		Changes: []event.Change{
			{ID: "c1", Time: t0, Kind: event.ChangeDeploy, Service: "api", Environment: "prod", Version: "v2", PreviousVersion: "v1", Commit: "abc", Author: "ann", Title: "deploy v2", URL: "https://ci/1", Source: "test", Attributes: map[string]string{"region": "eu"}},
			{ID: "c2", Time: t0.Add(30 * time.Minute), Kind: event.ChangeFlag, Service: "db", Title: "flag on"},
			{ID: "c3", Time: t0.Add(2 * time.Hour), Kind: event.ChangeConfig, Service: "api"},
		},
		Errors: []event.ErrorEvent{
			{ID: "e1", Time: t0.Add(time.Minute), Service: "api", Release: "v2", Fingerprint: "fp-new", Type: "Boom", Message: "boom", UserID: "u1", Level: "error", SampleRate: 0.5},
			{ID: "e2", Time: t0.Add(time.Minute + time.Second), Service: "api", Release: "v2", Fingerprint: "fp-new", Type: "Boom", Message: "boom", UserID: "u2", Level: "error", SampleRate: 0.5},
			{ID: "e3", Time: t0.Add(-time.Hour), Service: "api", Release: "v1", Fingerprint: "fp-old", Type: "Old", Message: "old", Level: "error", SampleRate: 1},
			{ID: "e4", Time: t0.Add(2 * time.Minute), Service: "api", Release: "v2", Fingerprint: "fp-old", Type: "Old", Message: "old", Level: "error", SampleRate: 1},
		},
		Logs: []event.LogRecord{
			{Time: t0.Add(time.Minute), Service: "api", Severity: "ERROR", Body: "payment failed", UserID: "u1", CustomerID: "acme", TraceID: "t1", Attributes: map[string]string{"route": "/pay"}},
		},
		Metrics: []event.MetricPoint{
			{Time: t0, Service: "api", Name: "requests", Value: 100, Labels: map[string]string{"env": "prod"}},
			{Time: t0.Add(time.Minute), Service: "api", Name: "requests", Value: 120, Labels: map[string]string{"env": "prod"}},
		},
		Services: []event.Service{{Service: "api", DependsOn: []string{"db"}, Time: t0}, {Service: "db", DependsOn: []string{}, Time: t0}},
	}
}

func TestWriteReadAndDeduplicate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		b := sampleBatch()
		// Written twice: re-sent records must not count twice.
		for i := 0; i < 2; i++ {
			if err := s.Write(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		want := map[string]uint64{"changes": 3, "errors": 4, "otel_logs": 1, "metric_points": 2, "services": 2}
		for table, n := range want {
			got, err := s.Count(ctx, table)
			if err != nil {
				t.Fatal(err)
			}
			if got != n {
				t.Errorf("%s: %d records, want %d", table, got, n)
			}
		}
		changes, err := s.Changes(ctx, []string{"api"}, t0, t0.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// c3 is at the exclusive upper bound; c2 is another service.
		if len(changes) != 1 || !reflect.DeepEqual(changes[0], b.Changes[0]) {
			t.Errorf("changes = %+v, want only %+v", changes, b.Changes[0])
		}
		topo, err := s.Topology(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(topo, map[string][]string{"api": {"db"}, "db": {}}) {
			t.Errorf("topology = %v", topo)
		}
	})
}

func TestTopologyLatestWins(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for i, deps := range [][]string{{"a"}, {"a", "b"}} {
			err := s.Write(ctx, &event.Batch{Services: []event.Service{{Service: "api", DependsOn: deps, Time: t0.Add(time.Duration(i) * time.Minute)}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		topo, err := s.Topology(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(topo["api"], []string{"a", "b"}) {
			t.Errorf("api depends on %v, want the latest [a b]", topo["api"])
		}
	})
}

func TestErrorsPerMinuteCorrectsForSampling(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.Write(ctx, sampleBatch()); err != nil {
			t.Fatal(err)
		}
		got, err := s.ErrorsPerMinute(ctx, []string{"api"}, t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := []store.Bucket{
			{Service: "api", Minute: t0.Add(time.Minute), Count: 2, Estimate: 4},
			{Service: "api", Minute: t0.Add(2 * time.Minute), Count: 1, Estimate: 1},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
		req, err := s.MetricPerMinute(ctx, "requests", []string{"api"}, t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(req) != 2 || req[0].Estimate != 100 || req[1].Estimate != 120 {
			t.Errorf("requests per minute = %+v", req)
		}
	})
}

func TestNewFingerprints(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.Write(ctx, sampleBatch()); err != nil {
			t.Fatal(err)
		}
		got, err := s.NewFingerprints(ctx, []string{"api", "db"}, t0.Add(-24*time.Hour), t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// fp-old was seen an hour before the window, so only fp-new is new.
		if len(got) != 1 || got[0].Service != "api" || got[0].Fingerprint != "fp-new" || got[0].Count != 2 || got[0].Release != "v2" || !got[0].FirstSeen.Equal(t0.Add(time.Minute)) {
			t.Errorf("new fingerprints = %+v", got)
		}
	})
}

func TestLogsFollowOtelColumns(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.Write(ctx, sampleBatch()); err != nil {
			t.Fatal(err)
		}
		// The query an otel_logs user would write, on exporter columns only.
		rows, err := s.Engine().Query(ctx, `SELECT ServiceName, SeverityText, SeverityNumber, Body, TraceId, LogAttributes['user.id'], LogAttributes['customer.id'], LogAttributes['route'], ResourceAttributes['service.name'], TimestampTime
			FROM otel_logs WHERE ServiceName = {s:String} AND TimestampTime >= {from:DateTime}`, map[string]string{"s": "api", "from": t0.Format("2006-01-02 15:04:05")})
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var svc, sev, body, trace, user, cust, route, rsvc string
			var num uint8
			var tt time.Time
			if err := rows.Scan(&svc, &sev, &num, &body, &trace, &user, &cust, &route, &rsvc, &tt); err != nil {
				t.Fatal(err)
			}
			got := []string{svc, sev, strconv.Itoa(int(num)), body, trace, user, cust, route, rsvc, tt.UTC().Format(time.RFC3339)}
			want := []string{"api", "ERROR", "17", "payment failed", "t1", "u1", "acme", "/pay", "api", t0.Add(time.Minute).Format(time.RFC3339)}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("log row = %q, want %q", got, want)
			}
			n++
		}
		if n != 1 {
			t.Errorf("%d log rows, want 1", n)
		}
	})
}

// TestRollupBackfill checks that the migration adding the fingerprint
// rollup fills it from the errors stored before it: a store that predates
// it answers the same afterwards.
func TestRollupBackfill(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		// Back to the schema before the rollup, then errors stored there.
		for _, q := range []string{
			"DROP VIEW %s.error_fingerprints_mv",
			"DROP TABLE %s.error_fingerprints",
			"ALTER TABLE %s.correlator_migrations DELETE WHERE version >= 2 SETTINGS mutations_sync = 2",
		} {
			if err := s.Engine().Exec(ctx, fmt.Sprintf(q, s.Database()), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Write(ctx, sampleBatch()); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := s.NewFingerprints(ctx, []string{"api"}, t0.Add(-24*time.Hour), t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Fingerprint != "fp-new" || got[0].Count != 2 || !got[0].FirstSeen.Equal(t0.Add(time.Minute)) {
			t.Errorf("new fingerprints after the backfill = %+v", got)
		}
		all, err := s.NewErrorsAll(ctx, t0.Add(-24*time.Hour), t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || all[0].Fingerprint != "fp-new" || all[0].Service != "api" || all[0].Type != "Boom" {
			t.Errorf("new errors after the backfill = %+v", all)
		}
	})
}

// TestLogLines checks the log window read: whole seconds, warnings and
// worse, oldest first, and above the limit a sample spread over the
// window, the same on every call.
func TestLogLines(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var b event.Batch
		// A warning every 3.6 s for an hour, an INFO line beside each.
		for i := range 1000 {
			at := t0.Add(time.Duration(i) * 3600 * time.Millisecond)
			b.Logs = append(b.Logs,
				event.LogRecord{Time: at, Service: "api", Severity: "WARN", Body: fmt.Sprintf("slow request %d", i)},
				event.LogRecord{Time: at, Service: "api", Severity: "INFO", Body: fmt.Sprintf("request %d", i)})
		}
		if err := s.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
		type window struct{ from, to time.Time }
		tests := []struct {
			name   string
			w      window
			limit  int
			n      int
			first  string
			sample bool
		}{
			// The window is in seconds: [10:01:30.4, 10:02:42.9) reads
			// [10:01:30, 10:02:42), which takes line 25 (at 10:01:30.0)
			// and leaves line 45 (at 10:02:42.0).
			{"sub-second bounds truncate", window{t0.Add(90400 * time.Millisecond), t0.Add(162900 * time.Millisecond)}, 1000, 20, "slow request 25", false},
			{"all under the limit", window{t0, t0.Add(time.Hour)}, 1000, 1000, "slow request 0", false},
			{"sampled above the limit", window{t0, t0.Add(time.Hour)}, 100, 100, "", true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.LogLines(ctx, "api", tt.w.from, tt.w.to, 13, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != tt.n {
					t.Fatalf("%d lines, want %d", len(got), tt.n)
				}
				if tt.first != "" && got[0].Body != tt.first {
					t.Errorf("first line %q, want %q", got[0].Body, tt.first)
				}
				perSixth := make([]int, 6)
				for i, l := range got {
					if !strings.HasPrefix(l.Body, "slow request ") {
						t.Fatalf("line %q is not a warning", l.Body)
					}
					if i > 0 && l.Time.Before(got[i-1].Time) {
						t.Fatalf("line %d at %v before line %d at %v", i, l.Time, i-1, got[i-1].Time)
					}
					perSixth[int(l.Time.Sub(t0)/(10*time.Minute))]++
				}
				if !tt.sample {
					return
				}
				// About 17 in each ten minutes; a LIMIT that kept the
				// first lines read would bunch them.
				for i, n := range perSixth {
					if n < 5 {
						t.Errorf("%d sampled lines in minutes %d to %d: %v", n, 10*i, 10*i+10, perSixth)
					}
				}
				again, err := s.LogLines(ctx, "api", tt.w.from, tt.w.to, 13, tt.limit)
				if err != nil || !reflect.DeepEqual(again, got) {
					t.Errorf("a second read sampled other lines (%v)", err)
				}
			})
		}
	})
}

var granulesRE = regexp.MustCompile(`Granules: (\d+)/(\d+)`)

// TestWindowReadsOnlyTheWindow checks the claim the schema is built on: a
// "this service, this time window" query selects only the granules of that
// window, not the table.
func TestWindowReadsOnlyTheWindow(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var b event.Batch
		services := []string{"api", "db", "web", "auth"}
		for i := 0; i < 200000; i++ {
			b.Errors = append(b.Errors, event.ErrorEvent{
				ID: fmt.Sprintf("e%d", i), Time: t0.Add(time.Duration(i) * 2 * time.Second), Service: services[i%4],
				Fingerprint: "fp", Message: "m", Level: "error", SampleRate: 1,
			})
		}
		if err := s.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
		// Merge so that granule counts reflect the steady state.
		if err := s.Engine().Exec(ctx, "OPTIMIZE TABLE errors FINAL", nil); err != nil {
			t.Fatal(err)
		}
		rows, err := s.Engine().Query(ctx, `EXPLAIN indexes = 1 SELECT count() FROM errors
			WHERE service IN {services:Array(String)} AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}`,
			map[string]string{"services": store.ParamStrings([]string{"api"}), "from": store.ParamTime(t0.Add(24 * time.Hour)), "to": store.ParamTime(t0.Add(25 * time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		m := granulesRE.FindAllStringSubmatch(strings.Join(plan, "\n"), -1)
		if len(m) == 0 {
			t.Fatalf("no granule counts in plan:\n%s", strings.Join(plan, "\n"))
		}
		last := m[len(m)-1]
		selected, _ := strconv.Atoi(last[1])
		total, _ := strconv.Atoi(m[0][2])
		// One hour of one of four services over ~4.6 days is about 0.2%
		// of the rows; allow for granule edges per partition.
		if selected > 4 || total < 20 {
			t.Errorf("window query selects %d of %d granules:\n%s", selected, total, strings.Join(plan, "\n"))
		}
	})
}

func TestMigrationDDLGolden(t *testing.T) {
	for _, tc := range []struct{ name, db, cluster string }{
		{"single", "correlator", ""},
		{"cluster", "correlator", "prod_cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(store.MigrationStatements(tc.db, tc.cluster), ";\n\n") + ";\n"
			path := "testdata/ddl_" + tc.name + ".sql"
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("DDL differs from %s (run go test -update and review the diff):\n%s", path, got)
			}
		})
	}
}

func TestClusterDDLShape(t *testing.T) {
	stmts := store.MigrationStatements("correlator", "prod")
	tables := []string{"changes", "errors", "otel_logs", "metric_points", "services", "incidents", "error_fingerprints"}
	all := strings.Join(stmts, "\n")
	for _, tb := range tables {
		local := regexp.MustCompile(`CREATE TABLE IF NOT EXISTS correlator\.` + tb + `_local ON CLUSTER prod\n[\s\S]*?ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/\{shard\}/correlator/` + tb + `_local', '\{replica\}'`)
		dist := regexp.MustCompile(`CREATE TABLE IF NOT EXISTS correlator\.` + tb + ` ON CLUSTER prod AS correlator\.` + tb + `_local\nENGINE = Distributed\(prod, correlator, ` + tb + `_local, [^)]+\)`)
		if !local.MatchString(all) {
			t.Errorf("no replicated local table for %s", tb)
		}
		if !dist.MatchString(all) {
			t.Errorf("no distributed table for %s", tb)
		}
	}
	for _, q := range stmts {
		// A backfill is an INSERT, which has no ON CLUSTER: it goes once
		// through the Distributed tables, which reach every shard.
		if strings.HasPrefix(q, "INSERT INTO ") {
			if strings.Contains(q, "_local") {
				t.Errorf("backfill through local tables reaches one shard only:\n%s", q)
			}
			continue
		}
		if !strings.Contains(q, "ON CLUSTER prod") {
			t.Errorf("statement without ON CLUSTER:\n%s", q)
		}
	}
	// Inserts into a Distributed table land in the local tables, and only
	// those fire views: the view must read and write the local tables.
	view := regexp.MustCompile(`CREATE MATERIALIZED VIEW IF NOT EXISTS correlator\.error_fingerprints_mv ON CLUSTER prod TO correlator\.error_fingerprints_local\nAS SELECT [\s\S]*\nFROM correlator\.errors_local\n`)
	if !view.MatchString(all) {
		t.Error("no view from errors_local to error_fingerprints_local")
	}
	single := strings.Join(store.MigrationStatements("correlator", ""), "\n")
	if strings.Contains(single, "Replicated") || strings.Contains(single, "ON CLUSTER") || strings.Contains(single, "Distributed") || strings.Contains(single, "_local") {
		t.Error("single-node DDL mentions cluster features")
	}
	if !regexp.MustCompile(`MATERIALIZED VIEW IF NOT EXISTS correlator\.error_fingerprints_mv TO correlator\.error_fingerprints\nAS SELECT [\s\S]*\nFROM correlator\.errors\n`).MatchString(single) {
		t.Error("no single-node view from errors to error_fingerprints")
	}
}

// The reference statements for NewFingerprints and NewErrorsAll: what
// they answered from the events alone before the rollup (NewErrorsAll then
// also split a fingerprint by its messages; it is one error per
// fingerprint now, with all its type-and-message variants for the check).
const (
	refNewFingerprints = `
SELECT fingerprint, any(type), any(message), argMin(release, time), min(time) AS first_seen, max(time), count()
FROM errors FINAL
WHERE service = {service:String}
  AND time >= {since:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
GROUP BY fingerprint
HAVING first_seen >= {from:DateTime64(3, 'UTC')}
ORDER BY first_seen, fingerprint`
	refNewErrorsAll = `
SELECT service, fingerprint, groupUniqArray(concat(type, '\n', message)), min(time) AS first_seen
FROM errors FINAL
WHERE time >= {since:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
GROUP BY service, fingerprint
HAVING first_seen >= {from:DateTime64(3, 'UTC')}`
)

// newErrorsAnswer is what NewFingerprints and NewErrorsAll answer to one
// question: the new fingerprints of each service, and the new errors by
// service and fingerprint with their first sighting and the type and
// message variants seen ("type\nmessage").
type newErrorsAnswer struct {
	fps map[string][]store.Fingerprint
	all map[[2]string]newErrorSeen
}

type newErrorSeen struct {
	first    time.Time
	variants []string
}

// sameAs compares a store's answer to the reference: the same
// fingerprints and numbers, and for each new error a type and message
// (one of several, chosen by the engine) among those seen.
func (a newErrorsAnswer) sameAs(ref newErrorsAnswer) bool {
	if !reflect.DeepEqual(a.fps, ref.fps) || len(a.all) != len(ref.all) {
		return false
	}
	for k, v := range a.all {
		r, ok := ref.all[k]
		if !ok || !v.first.Equal(r.first) || len(v.variants) != 1 || !slices.Contains(r.variants, v.variants[0]) {
			return false
		}
	}
	return true
}

// askNewErrors asks the store's own methods.
func askNewErrors(t *testing.T, s *store.Store, services []string, since, from, to time.Time) newErrorsAnswer {
	t.Helper()
	ctx := context.Background()
	a := newErrorsAnswer{fps: map[string][]store.Fingerprint{}, all: map[[2]string]newErrorSeen{}}
	fps, err := s.NewFingerprints(ctx, services, since, from, to)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range fps {
		if i > 0 && f.FirstSeen.Before(fps[i-1].FirstSeen) {
			t.Errorf("fingerprints out of order: %v before %v", fps[i-1].FirstSeen, f.FirstSeen)
		}
		a.fps[f.Service] = append(a.fps[f.Service], f)
	}
	all, err := s.NewErrorsAll(ctx, since, from, to)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range all {
		if i > 0 && n.FirstSeen.Before(all[i-1].FirstSeen) {
			t.Errorf("new errors out of order: %v before %v", all[i-1].FirstSeen, n.FirstSeen)
		}
		a.all[[2]string{n.Service, n.Fingerprint}] = newErrorSeen{n.FirstSeen, []string{n.Type + "\n" + n.Message}}
	}
	return a
}

// askNewErrorsReference asks the reference statements.
func askNewErrorsReference(t *testing.T, s *store.Store, services []string, since, from, to time.Time) newErrorsAnswer {
	t.Helper()
	ctx := context.Background()
	p := map[string]string{"since": store.ParamTime(since), "from": store.ParamTime(from), "to": store.ParamTime(to)}
	a := newErrorsAnswer{fps: map[string][]store.Fingerprint{}, all: map[[2]string]newErrorSeen{}}
	scan := func(q string, p map[string]string, row func(store.Rows) error) {
		rows, err := s.Engine().Query(ctx, q, p)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, svc := range services {
		ps := maps.Clone(p)
		ps["service"] = store.ParamString(svc)
		scan(refNewFingerprints, ps, func(r store.Rows) error {
			f := store.Fingerprint{Service: svc}
			err := r.Scan(&f.Fingerprint, &f.Type, &f.Message, &f.Release, &f.FirstSeen, &f.LastSeen, &f.Count)
			f.FirstSeen, f.LastSeen = f.FirstSeen.UTC(), f.LastSeen.UTC()
			a.fps[svc] = append(a.fps[svc], f)
			return err
		})
	}
	scan(refNewErrorsAll, p, func(r store.Rows) error {
		var svc, fp string
		var seen newErrorSeen
		err := r.Scan(&svc, &fp, &seen.variants, &seen.first)
		seen.first = seen.first.UTC()
		a.all[[2]string{svc, fp}] = seen
		return err
	})
	return a
}

// TestNewErrorsRollup checks the fingerprint rollup against the events it
// summarises, on the demo's errors: NewFingerprints and NewErrorsAll must
// give what the reference statements over errors FINAL give, for the
// default week of lookback (the rollup) and for one hour (the same day:
// the events), and must not change when every event is sent again: the
// view counts re-sent copies, the answers must not.
func TestNewErrorsRollup(t *testing.T) {
	sc, err := scenario.Generate(scenario.Options{Seed: 1, Start: t0.Truncate(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	b := &event.Batch{Errors: sc.Batch.Errors, Services: sc.Batch.Services}
	var services []string
	for _, sv := range sc.Batch.Services {
		services = append(services, sv.Service)
	}
	type question struct {
		name            string
		since, from, to time.Time
	}
	var questions []question
	for at := sc.Start.Add(2 * time.Hour); !at.After(sc.End); at = at.Add(10 * time.Hour) {
		from := at.Add(-2 * time.Hour)
		questions = append(questions,
			question{"week to " + at.Format(time.DateTime), from.Add(-7 * 24 * time.Hour), from, at},
			question{"hour to " + at.Format(time.DateTime), from.Add(-time.Hour), from, at})
	}
	// The incident's window, where the injected new error is.
	questions = append(questions, question{"incident", sc.Detected.Add(-2*time.Hour - 7*24*time.Hour), sc.Detected.Add(-2 * time.Hour), sc.Detected})
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		want := map[string]newErrorsAnswer{}
		var fps, all int
		for _, q := range questions {
			got := askNewErrors(t, s, services, q.since, q.from, q.to)
			want[q.name] = askNewErrorsReference(t, s, services, q.since, q.from, q.to)
			if !got.sameAs(want[q.name]) {
				t.Errorf("%s: the store's answer differs from the events'\ngot  %+v\nwant %+v", q.name, got, want[q.name])
			}
			fps += len(got.fps)
			all += len(got.all)
		}
		if fps == 0 || all == 0 {
			t.Fatalf("%d new fingerprints, %d new errors in all questions: the test tests nothing", fps, all)
		}
		// Every event again: the reference from before still holds,
		// counts included.
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		for _, q := range questions {
			if got := askNewErrors(t, s, services, q.since, q.from, q.to); !got.sameAs(want[q.name]) {
				t.Errorf("%s: re-sent events changed the answer\ngot  %+v\nwant %+v", q.name, got, want[q.name])
			}
		}
	})
}

func TestPeerErrorsPerMinuteNamesTheCallee(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		at := t0.Add(5 * time.Minute)
		// Each case is one error of service "api"; want is the peer the
		// query should name ("" for an error that names none).
		cases := []struct {
			msg   string
			attrs map[string]string
			want  string
		}{
			{"boom", map[string]string{"peer.service": "stripe-api"}, "stripe-api"},
			{"boom", map[string]string{"server.address": "api.twilio.com"}, "api.twilio.com"},
			{`503 Service Unavailable on POST request for "https://rest.avatax.com/api/v2/x"`, nil, "rest.avatax.com"},
			{"GET http://inventory.prod.svc:8080/items: unexpected status 500", nil, "inventory.prod.svc"},
			{"HTTPSConnectionPool(host='api.openai.com', port=443): Read timed out.", nil, "api.openai.com"},
			{"nil pointer dereference", nil, ""},
		}
		var b event.Batch
		for i, c := range cases {
			b.Errors = append(b.Errors, event.ErrorEvent{ID: fmt.Sprintf("peer-%d", i), Time: at, Service: "api", Fingerprint: fmt.Sprintf("fp-%d", i),
				Type: "E", Message: c.msg, SampleRate: 0.5, Attributes: c.attrs})
		}
		if err := s.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
		got, err := s.PeerErrorsPerMinute(ctx, []string{"api"}, t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		peers := map[string]float64{}
		for _, g := range got {
			if g.Service != "api" || !g.Minute.Equal(at) {
				t.Errorf("bucket %+v: want service api, minute %s", g, at)
			}
			peers[g.Peer] += g.Estimate
		}
		for _, c := range cases {
			if c.want == "" {
				continue
			}
			if peers[c.want] != 2 { // one event at sample rate 0.5
				t.Errorf("peer %q: estimate %v, want 2 (all: %v)", c.want, peers[c.want], peers)
			}
		}
		if len(peers) != 5 {
			t.Errorf("got peers %v, want exactly the 5 named ones", peers)
		}
	})
}

func TestFlagErrorsCountsTheOnPath(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var b event.Batch
		// 6 errors with the flag on, 2 with it off, 3 that never evaluated
		// it, 1 on but in another service, 1 on but before the window.
		add := func(n int, svc, val string, at time.Time) {
			for range n {
				attrs := map[string]string{}
				if val != "" {
					attrs["flag.new-checkout"] = val
				}
				b.Errors = append(b.Errors, event.ErrorEvent{ID: fmt.Sprintf("flag-%d", len(b.Errors)), Time: at, Service: svc, Fingerprint: "fp", Type: "E", Message: "m", SampleRate: 1, Attributes: attrs})
			}
		}
		in := t0.Add(10 * time.Minute)
		add(6, "api", "true", in)
		add(2, "api", "false", in)
		add(3, "api", "", in)
		add(1, "web", "true", in)
		add(1, "api", "true", t0.Add(-time.Minute))
		if err := s.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
		on, evaluated, err := s.FlagErrors(ctx, "api", "new-checkout", t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if on != 6 || evaluated != 8 {
			t.Errorf("FlagErrors = %d on of %d evaluated, want 6 of 8", on, evaluated)
		}
		// A flag key is a value, never SQL.
		if on, evaluated, err = s.FlagErrors(ctx, "api", "x'] = '' OR 1=1 --", t0, t0.Add(time.Hour)); err != nil || on != 0 || evaluated != 0 {
			t.Errorf("hostile key: %d of %d, %v; want 0 of 0, no error", on, evaluated, err)
		}
	})
}

func TestChangeByID(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		want := event.Change{ID: "chg-1", Time: t0, Kind: event.ChangeDeploy, Service: "api", Version: "v2", Source: "github",
			Attributes: map[string]string{"sources": "argocd,github"}}
		if err := s.Write(ctx, &event.Batch{Changes: []event.Change{want, {ID: "chg-2", Time: t0, Kind: event.ChangeFlag, Service: "api"}}}); err != nil {
			t.Fatal(err)
		}
		got, found, err := s.ChangeByID(ctx, "chg-1")
		if err != nil || !found || got.ID != "chg-1" || got.Version != "v2" || !got.Time.Equal(t0) || got.Attributes["sources"] != "argocd,github" {
			t.Errorf("ChangeByID(chg-1) = %+v, %v, %v", got, found, err)
		}
		if _, found, err := s.ChangeByID(ctx, "nope' OR 1=1 --"); err != nil || found {
			t.Errorf("ChangeByID(hostile) found %v, err %v; want not found", found, err)
		}
	})
}
