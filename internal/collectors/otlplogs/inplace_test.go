package otlplogs

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

// These tests back OTEL_LOGS_IN_PLACE.md: correlator reading logs from an
// otel_logs table that the OpenTelemetry Collector's ClickHouse exporter
// created and fills, without copying them.

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Cleanup()
	os.Exit(code)
}

var inPlaceT0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// exporterInsert writes rows with the exporter's INSERT column list
// (logs_insert.sql plus the optional EventName), as it fills the table.
const exporterInsert = `INSERT INTO %s (Timestamp, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber,
    ServiceName, Body, ResourceSchemaUrl, ResourceAttributes, ScopeSchemaUrl, ScopeName, ScopeVersion,
    ScopeAttributes, LogAttributes, EventName) VALUES
  ('2026-11-02 10:01:00.123456789', '4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 1, 'ERROR', 17,
   'checkout', 'payment failed: card declined', '', map('service.name', 'checkout', 'k8s.pod.name', 'checkout-7d9'), '',
   'github.com/acme/checkout', '1.2.3', map(), map('user.id', 'u-42'), ''),
  ('2026-11-02 10:02:00', '', '', 0, 'INFO', 9, 'checkout', 'order placed', '', map('service.name', 'checkout'), '', '', '', map(), map(), 'order.placed'),
  ('2026-11-02 10:30:00.5', '', '', 0, 'WARN2', 14, 'checkout', 'slow response from bank', '', map('service.name', 'checkout'), '', '', '', map(), map(), ''),
  ('2026-11-02 11:10:00', '', '', 0, 'ERROR', 17, 'checkout', 'after the window', '', map('service.name', 'checkout'), '', '', '', map(), map(), ''),
  ('2026-11-02 10:01:00', '', '', 0, 'ERROR', 17, 'cart', 'another service', '', map('service.name', 'cart'), '', '', '', map(), map(), '')`

// logBodiesByTimestamp is store.LogBodies' query with the window on
// Timestamp, a column every generation of the table has, instead of
// TimestampTime. %s is the table.
const logBodiesByTimestamp = `
SELECT Body FROM %s
WHERE ServiceName = {service:String}
  AND Timestamp >= {from:DateTime64(9)} AND Timestamp < {to:DateTime64(9)}
  AND SeverityNumber >= {min_severity:UInt8}
LIMIT {limit:UInt32}`

// wantBodies is what a read of checkout's WARN and above in
// [10:00, 11:00) must return from exporterInsert's rows.
var wantBodies = []string{"payment failed: card declined", "slow response from bank"}

func createExporterTable(t *testing.T, s *store.Store, ddlFile string) string {
	t.Helper()
	ctx := context.Background()
	ddl, err := os.ReadFile("testdata/" + ddlFile)
	if err != nil {
		t.Fatal(err)
	}
	db := s.Database() + "_otel"
	table := db + ".otel_logs"
	if err := s.Engine().Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Engine().Exec(context.Background(), "DROP DATABASE IF EXISTS "+db, nil) })
	if err := s.Engine().Exec(ctx, strings.ReplaceAll(string(ddl), "{table}", table), nil); err != nil {
		t.Fatalf("exporter DDL %s: %v", ddlFile, err)
	}
	if err := s.Engine().Exec(ctx, fmt.Sprintf(exporterInsert, table), nil); err != nil {
		t.Fatalf("exporter insert: %v", err)
	}
	return table
}

// logBodiesByTimestamp's parameters for checkout, WARN and above, in
// [10:00, 11:00).
func byTimestampParams() map[string]string {
	const layout = "2006-01-02 15:04:05.000000000"
	return map[string]string{
		"service": store.ParamString("checkout"), "from": inPlaceT0.Format(layout), "to": inPlaceT0.Add(time.Hour).Format(layout),
		"min_severity": "13", "limit": "100",
	}
}

// readByTimestamp runs logBodiesByTimestamp on table.
func readByTimestamp(t *testing.T, s *store.Store, table string) []string {
	t.Helper()
	out := queryStrings(t, s, fmt.Sprintf(logBodiesByTimestamp, table), byTimestampParams())
	slices.Sort(out)
	return out
}

func queryStrings(t *testing.T, s *store.Store, q string, params map[string]string) []string {
	t.Helper()
	rows, err := s.Engine().Query(context.Background(), q, params)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// primaryKeyCondition is the condition EXPLAIN indexes = 1 reports for
// the primary key when q runs: what of the query the sort key serves.
func primaryKeyCondition(t *testing.T, s *store.Store, q string, params map[string]string) string {
	t.Helper()
	lines := queryStrings(t, s, "EXPLAIN indexes = 1 "+q, params)
	for i, l := range lines {
		if strings.TrimSpace(l) != "PrimaryKey" {
			continue
		}
		for _, c := range lines[i+1:] {
			if c = strings.TrimSpace(c); strings.HasPrefix(c, "Condition:") {
				return c
			}
		}
	}
	t.Fatalf("no primary key condition in %q", lines)
	return ""
}

// logBodies calls the real store.LogLines with logs_table set to table.
func logBodies(t *testing.T, s *store.Store, table string) ([]string, error) {
	t.Helper()
	// A second Store over the same engine, configured as `logs_table:
	// <db>.otel_logs` would configure it. It must not be closed: the engine
	// belongs to s.
	s2, err := store.New(s.Engine(), store.Options{Database: s.Database(), LogsTable: table})
	if err != nil {
		t.Fatalf("store with logs table %s: %v", table, err)
	}
	lines, err := s2.LogLines(context.Background(), "checkout", inPlaceT0, inPlaceT0.Add(time.Hour), 13, 100)
	var got []string
	for _, l := range lines {
		got = append(got, l.Body)
	}
	slices.Sort(got)
	return got, err
}

func TestReadExporterTableInPlace(t *testing.T) {
	t.Run("v0.150 and before", func(t *testing.T) {
		s := storetest.Embedded(t)
		table := createExporterTable(t, s, "exporter_otel_logs_v0.150.sql")
		got, err := logBodies(t, s, table)
		if err != nil {
			t.Fatalf("store.LogBodies on the exporter's table: %v", err)
		}
		if !slices.Equal(got, wantBodies) {
			t.Errorf("store.LogBodies = %q, want %q", got, wantBodies)
		}
		if got := readByTimestamp(t, s, table); !slices.Equal(got, wantBodies) {
			t.Errorf("by Timestamp = %q, want %q", got, wantBodies)
		}
	})

	t.Run("v0.151 and later", func(t *testing.T) {
		s := storetest.Embedded(t)
		table := createExporterTable(t, s, "exporter_otel_logs_v0.151.sql")
		// Today's LogBodies filters on TimestampTime, which this
		// generation of the table no longer has.
		if _, err := logBodies(t, s, table); err == nil || !strings.Contains(err.Error(), "TimestampTime") {
			t.Errorf("store.LogBodies on a table without TimestampTime: err = %v, want an unknown TimestampTime", err)
		}
		// The same query on Timestamp reads it, and the sort key (which
		// leads with toStartOfFiveMinutes(Timestamp)) serves the window.
		if got := readByTimestamp(t, s, table); !slices.Equal(got, wantBodies) {
			t.Errorf("by Timestamp = %q, want %q", got, wantBodies)
		}
		if c := primaryKeyCondition(t, s, fmt.Sprintf(logBodiesByTimestamp, table), byTimestampParams()); !strings.Contains(c, "Timestamp in") {
			t.Errorf("the primary key does not serve the time window: %s", c)
		}
		// The workaround for an unchanged correlator: an ALIAS column
		// costs no storage and needs no rewrite of the data.
		if err := s.Engine().Exec(context.Background(),
			"ALTER TABLE "+table+" ADD COLUMN IF NOT EXISTS TimestampTime DateTime ALIAS toDateTime(Timestamp)", nil); err != nil {
			t.Fatal(err)
		}
		got, err := logBodies(t, s, table)
		if err != nil {
			t.Fatalf("store.LogBodies after adding the alias: %v", err)
		}
		if !slices.Equal(got, wantBodies) {
			t.Errorf("store.LogBodies after adding the alias = %q, want %q", got, wantBodies)
		}
		// ClickHouse sees through the alias to the sort key.
		aliasQuery := `SELECT Body FROM ` + table + ` WHERE ServiceName = {service:String}
  AND TimestampTime >= {from:DateTime} AND TimestampTime < {to:DateTime}`
		params := map[string]string{"service": "checkout", "from": inPlaceT0.Format(time.DateTime), "to": inPlaceT0.Add(time.Hour).Format(time.DateTime)}
		if c := primaryKeyCondition(t, s, aliasQuery, params); !strings.Contains(c, "toDateTime(Timestamp) in") {
			t.Errorf("the primary key does not serve the window through the alias: %s", c)
		}
	})

	t.Run("correlator's own table", func(t *testing.T) {
		// The Timestamp form reads correlator's own otel_logs too, so one
		// query serves every table.
		s := storetest.Embedded(t)
		rec := func(min int, sev, body string) event.LogRecord {
			return event.LogRecord{Time: inPlaceT0.Add(time.Duration(min) * time.Minute), Service: "checkout", Severity: sev, Body: body}
		}
		err := s.Write(context.Background(), &event.Batch{Logs: []event.LogRecord{
			rec(1, "ERROR", "payment failed: card declined"), rec(2, "INFO", "order placed"),
			rec(30, "WARN", "slow response from bank"), rec(70, "ERROR", "after the window"),
		}})
		if err != nil {
			t.Fatal(err)
		}
		if got := readByTimestamp(t, s, "otel_logs"); !slices.Equal(got, wantBodies) {
			t.Errorf("by Timestamp = %q, want %q", got, wantBodies)
		}
	})
}
