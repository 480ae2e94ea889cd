// Package dashboards holds the Grafana dashboards that docker-compose
// provisions. This test keeps them honest: every dashboard is well-formed
// JSON, and every query in it runs against the embedded store with the
// current schema and returns rows on the demo's data (with an incident and
// a snapshot of it taken the way correlator takes them), so a schema or
// snapshot change cannot silently break a dashboard.
package dashboards

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/impact"
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

// demoIncident is the incident the tests write for the scenario.
const demoIncident = "inc-demo"

// expand replaces the Grafana ClickHouse plugin's macros the way the
// plugin does, for a fixed range and a 60 s interval, and the variables
// with the scenario's service and demoIncident.
func expand(sql, db, service string, from, to time.Time) string {
	f, t := from.UTC().Format("2006-01-02 15:04:05"), to.UTC().Format("2006-01-02 15:04:05")
	sql = timeFilterRE.ReplaceAllString(sql, "$1 >= toDateTime('"+f+"', 'UTC') AND $1 <= toDateTime('"+t+"', 'UTC')")
	sql = timeIntervalRE.ReplaceAllString(sql, "toStartOfInterval(toDateTime($1), INTERVAL 60 second)")
	sql = strings.ReplaceAll(sql, "$__interval_s", "60")
	// :sqlstring quotes the value and doubles its quotes, as Grafana does.
	sql = strings.ReplaceAll(sql, "${service:sqlstring}", sqlString(service))
	sql = strings.ReplaceAll(sql, "${incident:sqlstring}", sqlString(demoIncident))
	return strings.ReplaceAll(sql, "correlator.", db+".")
}

// sqlString is Grafana's sqlstring format of one value.
func sqlString(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

// variableRE finds a dashboard variable in a query: ${name} or
// ${name:format}.
var variableRE = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}`)

// TestQueriesQuoteVariables: a variable is text from the dashboard's URL
// (?var-incident=…), so a query may use it only through the sqlstring
// format, which Grafana quotes and escapes; '${incident}' would let a
// viewer close the quote and run any SELECT the data source user may.
func TestQueriesQuoteVariables(t *testing.T) {
	files, err := filepath.Glob("*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var qs []query
		collect(doc, "", &qs)
		for _, q := range qs {
			for _, m := range variableRE.FindAllStringSubmatch(q.sql, -1) {
				if m[2] != "sqlstring" {
					t.Errorf("%s: %s uses %s without :sqlstring", f, q.path, m[0])
				}
			}
		}
	}
	if got := expand("x = ${service:sqlstring}", "db", "o'brien", time.Time{}, time.Time{}); got != "x = 'o''brien'" {
		t.Errorf("expand quotes as %q", got)
	}
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
	writeIncident(t, s, sc)
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

// annotationQueries returns a dashboard's ClickHouse annotation queries by
// name.
func annotationQueries(t *testing.T, file string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(file)
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
	out := map[string]string{}
	for _, a := range dash.Annotations.List {
		if a.Target.RawSQL != "" {
			out[a.Name] = a.Target.RawSQL
		}
	}
	return out
}

// TestChangeAnnotationsReturnTheChanges checks that each dashboard's change
// annotation query returns exactly the scenario's changes of the service
// (the incident's service, on the incident dashboard) and its direct
// dependencies in the range, with the tags the Grafana overlay gives them,
// and that the incident dashboard marks the incident's window.
func TestChangeAnnotationsReturnTheChanges(t *testing.T) {
	sc, err := scenario.Generate(scenario.Options{Seed: 11, Days: 2, Services: 6})
	if err != nil {
		t.Fatal(err)
	}
	s := storetest.Embedded(t)
	ctx := context.Background()
	if err := s.Write(ctx, &sc.Batch); err != nil {
		t.Fatal(err)
	}
	writeIncident(t, s, sc)
	from, to := sc.Start, sc.End
	scope := map[string]bool{sc.Service: true}
	for _, d := range sc.Topology[sc.Service] {
		scope[d] = true
	}
	want := map[string]bool{}
	for _, c := range sc.Batch.Changes {
		if scope[c.Service] && !c.Time.Before(from) && !c.Time.After(to) {
			want[c.ID] = true
		}
	}
	if len(want) == 0 {
		t.Fatal("the scenario has no changes in scope")
	}
	for _, tt := range []struct{ file, name string }{
		{"service-overview.json", "Changes (service and dependencies)"},
		{"incident.json", "Changes (incident services and dependencies)"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			sql, ok := annotationQueries(t, tt.file)[tt.name]
			if !ok {
				t.Fatalf("no annotation query %q", tt.name)
			}
			rows, err := s.Engine().Query(ctx, "SELECT toString(time), text, tags FROM ("+expand(sql, s.Database(), sc.Service, from, to)+")", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			got := 0
			for rows.Next() {
				var at, text, tags string
				if err := rows.Scan(&at, &text, &tags); err != nil {
					t.Fatal(err)
				}
				got++
				// Grafana splits the tags column on commas.
				tagList := strings.Split(tags, ",")
				for _, must := range []string{"correlator", "change"} {
					if !slices.Contains(tagList, must) {
						t.Errorf("annotation %q at %s: tags %q lack %q", text, at, tags, must)
					}
				}
				if !slices.ContainsFunc(tagList, func(s string) bool {
					return strings.HasPrefix(s, "service:") && scope[strings.TrimPrefix(s, "service:")]
				}) {
					t.Errorf("annotation %q: tags %q name no service in scope", text, tags)
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if got != len(want) {
				t.Errorf("annotation query returned %d changes, the scenario has %d for %s and its dependencies", got, len(want), sc.Service)
			}
		})
	}
	sql := annotationQueries(t, "incident.json")["Incident window"]
	var start, stop time.Time
	rows, err := s.Engine().Query(ctx, expand(sql, s.Database(), sc.Service, from, to), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var text, tags string
		if err := rows.Scan(&start, &stop, &text, &tags); err != nil {
			t.Fatal(err)
		}
	}
	if !start.Equal(sc.Onset.Truncate(time.Millisecond)) || stop.Before(sc.Detected) {
		t.Errorf("incident window %s..%s, want from the onset %s to now (open)", start, stop, sc.Onset)
	}
}

// writeIncident writes the scenario's incident as correlator records one:
// opened at detection with an onset, an update with the action taken, and
// a snapshot holding the engine's ranking and the impact estimate.
func writeIncident(t *testing.T, s *store.Store, sc *scenario.Scenario) {
	t.Helper()
	ctx := context.Background()
	in := store.Incident{
		ID: demoIncident, Title: "Errors on " + sc.Service, Status: "open", Severity: "sev2", Services: []string{sc.Service},
		OpenedAt: sc.Detected, Onset: sc.Onset, UpdatedAt: sc.Detected,
	}
	if err := s.WriteIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.UpdatedAt, in.Note = sc.Detected.Add(5*time.Minute), "rolled back "+sc.Service
	if err := s.WriteIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	ans, err := correlate.New(s, correlate.Options{}).WhatChanged(ctx, correlate.Query{Service: sc.Service, At: sc.Detected, Lookback: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := impact.New(s, impact.Config{}).Impact(ctx, impact.Query{Services: []string{sc.Service}, From: sc.Onset, To: sc.Detected, Incident: demoIncident})
	if err != nil {
		t.Fatal(err)
	}
	causes, _ := json.Marshal(ans)
	imp, _ := json.Marshal(rep)
	if len(ans.Candidates) == 0 || len(rep.Customers) == 0 {
		t.Fatalf("the scenario's snapshot has %d candidates and %d customers; the panels need both", len(ans.Candidates), len(rep.Customers))
	}
	if err := s.WriteSnapshot(ctx, store.Snapshot{
		IncidentID: demoIncident, TakenAt: sc.Detected, Trigger: "open", WindowFrom: sc.Detected.Add(-2 * time.Hour), WindowTo: sc.Detected,
		Causes: string(causes), Impact: string(imp), Queries: "{}",
	}); err != nil {
		t.Fatal(err)
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
