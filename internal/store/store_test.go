package store_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
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
		got, err := s.NewFingerprints(ctx, "api", t0.Add(-24*time.Hour), t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// fp-old was seen an hour before the window, so only fp-new is new.
		if len(got) != 1 || got[0].Fingerprint != "fp-new" || got[0].Count != 2 || got[0].Release != "v2" || !got[0].FirstSeen.Equal(t0.Add(time.Minute)) {
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
	tables := []string{"changes", "errors", "otel_logs", "metric_points", "services", "incidents"}
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
		if !strings.Contains(q, "ON CLUSTER prod") {
			t.Errorf("statement without ON CLUSTER:\n%s", q)
		}
	}
	single := strings.Join(store.MigrationStatements("correlator", ""), "\n")
	if strings.Contains(single, "Replicated") || strings.Contains(single, "ON CLUSTER") || strings.Contains(single, "Distributed") {
		t.Error("single-node DDL mentions cluster features")
	}
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
