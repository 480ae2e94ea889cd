package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// Write inserts every record of b, one insert per kind. Records must have
// been validated (ingest does that). Re-writing a record with the same
// identity is harmless: the tables deduplicate on it.
func (s *Store) Write(ctx context.Context, b *event.Batch) error {
	now := time.Now().UTC()
	if len(b.Changes) > 0 {
		if err := s.insert(ctx, changesTable, changeColumns(b.Changes, now)); err != nil {
			return err
		}
	}
	if len(b.Errors) > 0 {
		if err := s.insert(ctx, errorsTable, errorColumns(b.Errors, now)); err != nil {
			return err
		}
	}
	if len(b.Logs) > 0 {
		if err := s.insert(ctx, logsTable, logColumns(b.Logs)); err != nil {
			return err
		}
	}
	if len(b.Metrics) > 0 {
		if err := s.insert(ctx, metricsTable, metricColumns(b.Metrics)); err != nil {
			return err
		}
	}
	if len(b.Services) > 0 {
		if err := s.insert(ctx, servicesTable, serviceColumns(b.Services, now)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) insert(ctx context.Context, t tableDef, data []any) error {
	start := time.Now()
	rows := 0
	if len(data) > 0 {
		rows = sliceLen(data[0])
	}
	err := s.eng.Insert(ctx, t.Name, t.insertColumns(), data)
	s.metrics.observeInsert(t.Name, rows, time.Since(start), err)
	if err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", rows, t.Name, err)
	}
	return nil
}

func sliceLen(v any) int {
	switch v := v.(type) {
	case []string:
		return len(v)
	case []time.Time:
		return len(v)
	}
	return 0
}

func changeColumns(cs []event.Change, now time.Time) []any {
	n := len(cs)
	id, kind, svc, env, ver, prev := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	commit, author, title, url, src := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	tm, ing := make([]time.Time, n), make([]time.Time, n)
	attrs := make([]map[string]string, n)
	for i, c := range cs {
		id[i], tm[i], kind[i], svc[i], env[i] = c.ID, c.Time, string(c.Kind), c.Service, c.Environment
		ver[i], prev[i], commit[i], author[i], title[i], url[i] = c.Version, c.PreviousVersion, c.Commit, c.Author, c.Title, c.URL
		src[i], attrs[i], ing[i] = c.Source, nonNil(c.Attributes), now
	}
	return []any{id, tm, kind, svc, env, ver, prev, commit, author, title, url, src, attrs, ing}
}

func errorColumns(es []event.ErrorEvent, now time.Time) []any {
	n := len(es)
	id, svc, env, rel, fp, typ, msg := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	user, cust, trace, level := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	tm, ing := make([]time.Time, n), make([]time.Time, n)
	rate := make([]float64, n)
	attrs := make([]map[string]string, n)
	for i, e := range es {
		id[i], tm[i], svc[i], env[i], rel[i], fp[i], typ[i], msg[i] = e.ID, e.Time, e.Service, e.Environment, e.Release, e.Fingerprint, e.Type, e.Message
		user[i], cust[i], trace[i], level[i] = e.UserID, e.CustomerID, e.TraceID, e.Level
		rate[i] = e.SampleRate
		if rate[i] <= 0 {
			rate[i] = 1
		}
		attrs[i], ing[i] = nonNil(e.Attributes), now
	}
	return []any{id, tm, svc, env, rel, fp, typ, msg, user, cust, trace, level, rate, attrs, ing}
}

// severityNumber maps OpenTelemetry severity text to its number range start.
func severityNumber(s string) uint8 {
	switch strings.ToUpper(s) {
	case "TRACE":
		return 1
	case "DEBUG":
		return 5
	case "INFO":
		return 9
	case "WARN", "WARNING":
		return 13
	case "ERROR":
		return 17
	case "FATAL":
		return 21
	}
	return 0
}

// Log attribute keys for the identities correlator reads from logs,
// following OpenTelemetry's semantic conventions where they have one.
const (
	LogAttrUserID     = "user.id"
	LogAttrCustomerID = "customer.id"
)

func logColumns(ls []event.LogRecord) []any {
	n := len(ls)
	ts := make([]time.Time, n)
	trace, span, sev, svc, body := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	empty := make([]string, n) // schema URLs, scope name and version
	flags, sevNum := make([]uint8, n), make([]uint8, n)
	res, scope, attrs := make([]map[string]string, n), make([]map[string]string, n), make([]map[string]string, n)
	for i, l := range ls {
		ts[i], trace[i], span[i], sev[i], svc[i], body[i] = l.Time, l.TraceID, l.SpanID, l.Severity, l.Service, l.Body
		sevNum[i] = severityNumber(l.Severity)
		res[i] = map[string]string{"service.name": l.Service}
		scope[i] = map[string]string{}
		a := make(map[string]string, len(l.Attributes)+2)
		for k, v := range l.Attributes {
			a[k] = v
		}
		if l.UserID != "" {
			a[LogAttrUserID] = l.UserID
		}
		if l.CustomerID != "" {
			a[LogAttrCustomerID] = l.CustomerID
		}
		attrs[i] = a
	}
	// Column order follows logsTable.insertColumns (TimestampTime is DEFAULT).
	return []any{ts, trace, span, flags, sev, sevNum, svc, body, empty, res, empty, empty, empty, scope, attrs}
}

func metricColumns(ms []event.MetricPoint) []any {
	n := len(ms)
	tm := make([]time.Time, n)
	svc, name := make([]string, n), make([]string, n)
	val := make([]float64, n)
	labels := make([]map[string]string, n)
	series := make([]uint64, n)
	for i, m := range ms {
		tm[i], svc[i], name[i], val[i], labels[i] = m.Time, m.Service, m.Name, m.Value, nonNil(m.Labels)
		series[i] = SeriesID(m.Service, m.Name, m.Labels)
	}
	return []any{tm, svc, name, val, labels, series}
}

func serviceColumns(ss []event.Service, now time.Time) []any {
	n := len(ss)
	svc := make([]string, n)
	deps := make([][]string, n)
	tm := make([]time.Time, n)
	for i, s := range ss {
		svc[i], deps[i], tm[i] = s.Service, s.DependsOn, s.Time
		if deps[i] == nil {
			deps[i] = []string{}
		}
		if tm[i].IsZero() {
			tm[i] = now
		}
	}
	return []any{svc, deps, tm}
}

// SeriesID identifies a metric series: FNV-1a over the service, the name and
// the labels in key order, each part terminated by a byte that cannot occur
// in UTF-8 text so that no two different series share an encoding.
func SeriesID(service, name string, labels map[string]string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(service))
	h.Write([]byte{0xff})
	h.Write([]byte(name))
	h.Write([]byte{0xff})
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0xfe})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return h.Sum64()
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
