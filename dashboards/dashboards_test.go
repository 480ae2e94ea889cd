// Package dashboards holds the Grafana dashboards that docker-compose
// provisions. This test keeps them honest: every dashboard is well-formed
// JSON, and every query in it runs against the embedded store with the
// current schema, so a schema change cannot silently break a dashboard.
package dashboards

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Cleanup()
	os.Exit(code)
}

// query is one rawSql found in a dashboard, with where it was found.
type query struct{ path, sql string }

func collect(v any, path string, out *[]query) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "rawSql" {
				*out = append(*out, query{path, s})
				continue
			}
			collect(x, path+"."+k, out)
		}
	case []any:
		for i, x := range v {
			collect(x, path+"["+strconv.Itoa(i)+"]", out)
		}
	}
}

var (
	timeFilterRE   = regexp.MustCompile(`\$__timeFilter\(([^)]+)\)`)
	timeIntervalRE = regexp.MustCompile(`\$__timeInterval\(([^)]+)\)`)
)

// expand replaces the Grafana ClickHouse plugin's macros the way the
// plugin does, for a fixed range and a 60 s interval.
func expand(sql, db, service string, from, to time.Time) string {
	f, t := from.UTC().Format("2006-01-02 15:04:05"), to.UTC().Format("2006-01-02 15:04:05")
	sql = timeFilterRE.ReplaceAllString(sql, "$1 >= toDateTime('"+f+"', 'UTC') AND $1 <= toDateTime('"+t+"', 'UTC')")
	sql = timeIntervalRE.ReplaceAllString(sql, "toStartOfInterval(toDateTime($1), INTERVAL 60 second)")
	sql = strings.ReplaceAll(sql, "$__interval_s", "60")
	sql = strings.ReplaceAll(sql, "${service}", service)
	return strings.ReplaceAll(sql, "correlator.", db+".")
}

func TestDashboardQueriesRunOnTheSchema(t *testing.T) {
	files, err := filepath.Glob("*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	sc, err := scenario.Generate(scenario.Options{Seed: 7, Days: 1, Services: 5})
	if err != nil {
		t.Fatal(err)
	}
	s := storetest.Embedded(t)
	ctx := context.Background()
	if err := s.Write(ctx, &sc.Batch); err != nil {
		t.Fatal(err)
	}
	from, to := sc.Detected.Add(-6*time.Hour), sc.Detected.Add(time.Hour)
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var dash map[string]any
			if err := json.Unmarshal(raw, &dash); err != nil {
				t.Fatalf("not well-formed JSON: %v", err)
			}
			for _, key := range []string{"uid", "title", "panels", "schemaVersion"} {
				if _, ok := dash[key]; !ok {
					t.Errorf("dashboard lacks %q", key)
				}
			}
			var qs []query
			collect(dash, "", &qs)
			if len(qs) == 0 {
				t.Fatal("no queries found")
			}
			for _, q := range qs {
				sql := expand(q.sql, s.Database(), sc.Service, from, to)
				if strings.Contains(sql, "$") {
					t.Errorf("%s: unexpanded macro in\n%s", q.path, sql)
					continue
				}
				n, err := count(ctx, s, sql)
				if err != nil {
					t.Errorf("%s: %v\n%s", q.path, err, sql)
					continue
				}
				if n == 0 {
					t.Errorf("%s: no rows on the scenario data\n%s", q.path, sql)
				}
			}
		})
	}
}

// TestChangeAnnotationsReturnTheChanges checks the annotation query
// returns exactly the scenario's changes of the service and its direct
// dependencies in the range.
func TestChangeAnnotationsReturnTheChanges(t *testing.T) {
	raw, err := os.ReadFile("service-overview.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Annotations struct {
			List []struct {
				Name   string `json:"name"`
				Target struct {
					RawSQL string `json:"rawSql"`
				} `json:"target"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	var sql string
	for _, a := range dash.Annotations.List {
		if a.Target.RawSQL != "" {
			sql = a.Target.RawSQL
		}
	}
	if sql == "" {
		t.Fatal("no ClickHouse annotation query")
	}
	sc, err := scenario.Generate(scenario.Options{Seed: 11, Days: 2, Services: 6})
	if err != nil {
		t.Fatal(err)
	}
	s := storetest.Embedded(t)
	ctx := context.Background()
	if err := s.Write(ctx, &sc.Batch); err != nil {
		t.Fatal(err)
	}
	from, to := sc.Start, sc.End
	scope := map[string]bool{sc.Service: true}
	for _, d := range sc.Topology[sc.Service] {
		scope[d] = true
	}
	want := 0
	for _, c := range sc.Batch.Changes {
		if scope[c.Service] && !c.Time.Before(from) && !c.Time.After(to) {
			want++
		}
	}
	got, err := count(ctx, s, expand(sql, s.Database(), sc.Service, from, to))
	if err != nil {
		t.Fatal(err)
	}
	if want == 0 || got != uint64(want) {
		t.Errorf("annotation query returned %d changes, the scenario has %d for %s and its dependencies", got, want, sc.Service)
	}
}

func count(ctx context.Context, s *store.Store, sql string) (uint64, error) {
	rows, err := s.Engine().Query(ctx, "SELECT count() FROM ("+sql+")", nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n uint64
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
	}
	return n, rows.Err()
}
