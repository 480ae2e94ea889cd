package correlate_test

import (
	"cmp"
	"context"
	_ "embed"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

// Environment of the big-store benchmark. It takes minutes and gigabytes,
// so it runs only when asked for.
const (
	// bigBenchEnv set to 1 runs BenchmarkWhatChangedBigStore.
	bigBenchEnv = "CORRELATOR_BIG_BENCH"
	// bigBenchScaleEnv multiplies the target volumes (default 1); a small
	// value such as 0.01 checks the harness in a minute.
	bigBenchScaleEnv = "CORRELATOR_BIG_BENCH_SCALE"
)

// The store the issue asks about: 10M errors, 50M log lines, 100k metric
// points and 10k changes. Metric points are a floor: the generator alone
// writes three per service and minute, more than that over a week.
const (
	bigErrors     = 10_000_000
	bigLogs       = 50_000_000
	bigChanges    = 10_000
	bigMinMetrics = 100_000
	// bigFreeBytes is the free disk the build needs: a few GB of parts at
	// rest, and a merge writes its part before it drops the sources.
	bigFreeBytes = 20 << 30
)

// The fill statements, one per table; each file documents its parameters.
var (
	//go:embed testdata/bigstore/errors.sql
	fillErrorsSQL string
	//go:embed testdata/bigstore/otel_logs.sql
	fillLogsSQL string
	//go:embed testdata/bigstore/changes.sql
	fillChangesSQL string
)

// BenchmarkWhatChangedBigStore answers one "what changed?" question over a
// 2-hour window of a store at production scale and reports its p50 and p95
// latency beside the ceiling measured in the same run: the p50 of the
// heaviest single query the answer runs, timed alone on the raw engine
// after each answer. On the same store it then estimates the incident's
// impact over one hour, on the incident's service and on every service,
// timed the same way.
//
// The store is built by the generator: a week of 12 services at ten times
// the default traffic, written with store.Write, then grown to the target
// volumes by the engine's own INSERT ... SELECT, which resamples the
// generator's errors and log lines and adds background changes
// (testdata/bigstore). Nothing is optimized: the answer reads the parts
// the inserts and the background merges left, as a live store would.
//
// The answer's queries are seen by wrapping the store's engine rather than
// the correlate.Reader: the engine is four stable methods and sees every
// statement, whatever the Reader grows to.
//
// The detailed report goes to stderr as the benchmark runs (the testing
// package keeps only ten lines of a benchmark's log). Run it with
//
//	CORRELATOR_BIG_BENCH=1 go test -run '^$' -bench BigStore -benchtime 1x -timeout 60m ./internal/correlate/
func BenchmarkWhatChangedBigStore(b *testing.B) {
	if os.Getenv(bigBenchEnv) != "1" {
		b.Skip(bigBenchEnv + "=1 runs this benchmark (minutes, GBs of disk)")
	}
	scale := 1.0
	if v := os.Getenv(bigBenchScaleEnv); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0 && f <= 1) {
			b.Fatalf("invalid %s %q: want a number in (0, 1]", bigBenchScaleEnv, v)
		}
		scale = f
	}
	dir := storetest.EmbeddedDir()
	if free, err := bigFreeDisk(dir); err != nil {
		b.Fatalf("check free disk: %v", err)
	} else if need := uint64(scale * bigFreeBytes); free < need {
		b.Fatalf("%s has %.1f GB free, the big store needs %.1f GB", dir, bigGB(free), bigGB(need))
	}
	ctx := context.Background()
	s := storetest.Embedded(b)
	bigLogf("building the store in %s (scale %g)", dir, scale)
	sc, built := buildBigStore(ctx, b, s, scale)

	m := measureBigStore(ctx, b, s, sc)
	im1, imAll := measureImpactBigStore(ctx, b, s, sc)
	summary := []string{
		fmt.Sprintf("store: %d errors, %d log lines, %d metric points, %d changes; built in %v; %.2f GB on disk in %d active parts",
			built.rows["errors"], built.rows["otel_logs"], built.rows["metric_points"], built.rows["changes"],
			built.took.Round(time.Second), bigGB(m.parts.bytes), m.parts.count),
		fmt.Sprintf("what changed for %s over 2h (%d candidates, %d queries): p50 %.1f ms, p95 %.1f ms over %d answers after 3 warm-ups",
			sc.Service, m.candidates, m.queries, bigMS(m.p50), bigMS(m.p95), m.runs),
		fmt.Sprintf("heaviest query: p50 %.1f ms alone, %.1f ms inside the answer: %s",
			bigMS(m.heavyAlone), bigMS(m.heavyInside), m.heavy.label()),
		fmt.Sprintf("impact of %s over 1h (%d queries): p50 %.1f ms, p95 %.1f ms; heaviest query p50 %.1f ms alone, %.1f ms inside: %s",
			sc.Service, im1.queries, bigMS(im1.p50), bigMS(im1.p95), bigMS(im1.heavyAlone), bigMS(im1.heavyInside), im1.heavy.statement()),
		fmt.Sprintf("impact of all %d services over 1h (%d queries): p50 %.1f ms, p95 %.1f ms; heaviest query p50 %.1f ms alone, %.1f ms inside: %s",
			len(sc.Batch.Services), imAll.queries, bigMS(imAll.p50), bigMS(imAll.p95), bigMS(imAll.heavyAlone), bigMS(imAll.heavyInside), imAll.heavy.statement()),
	}
	for _, l := range summary {
		bigLogf("%s", l)
		b.Log(l)
	}
	b.ReportMetric(bigMS(m.p50), "p50_ms")
	b.ReportMetric(bigMS(m.p95), "p95_ms")
	b.ReportMetric(bigMS(m.heavyAlone), "heaviest_query_ms")
	b.ReportMetric(float64(m.p50)/float64(m.heavyAlone), "ratio")
	b.ReportMetric(bigMS(im1.p95), "impact_p95_ms")
	b.ReportMetric(bigMS(im1.heavyAlone), "impact_heaviest_query_ms")
	b.ReportMetric(bigMS(imAll.p95), "impact_all_p95_ms")
}

// bigMeasured is what measureBigStore measured.
type bigMeasured struct {
	candidates, queries, runs int
	p50, p95                  time.Duration // p50 and p95 of an answer
	heavy                     bigCall       // heavy is the slowest query of the warm-ups.
	heavyAlone, heavyInside   time.Duration // heavy's p50 alone and inside the answer
	parts                     bigParts      // parts is the store's active parts when measured.
}

// measureBigStore asks sc's question of s, checks the answer, and times it
// and each query it runs, logging where the time goes.
func measureBigStore(ctx context.Context, b *testing.B, s *store.Store, sc *scenario.Scenario) bigMeasured {
	b.Helper()
	rec := &bigRecorder{Engine: s.Engine()}
	rs, err := store.New(rec, store.Options{Database: s.Database()})
	if err != nil {
		b.Fatal(err)
	}
	eng := correlate.New(rs, correlate.Options{})
	q := correlate.Query{Service: sc.Service, At: sc.Detected, Lookback: 2 * time.Hour}
	ans, err := eng.WhatChanged(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	if len(ans.Candidates) == 0 || ans.Candidates[0].Change.ID != sc.ExpectedCause {
		top := "none"
		if len(ans.Candidates) > 0 {
			c := ans.Candidates[0]
			top = fmt.Sprintf("%s (%s of %s at %s, score %.3f)", c.Change.ID, c.Change.Kind, c.Change.Service,
				c.Change.Time.Format(time.TimeOnly), c.Score)
		}
		b.Fatalf("the cause %s is not ranked first of %d candidates: first is %s", sc.ExpectedCause, len(ans.Candidates), top)
	}
	bigLogf("answer: %d candidates in scope %v, verdict %s, the cause first with score %.3f",
		len(ans.Candidates), ans.Scope, ans.Verdict, ans.Candidates[0].Score)
	parts := bigLogParts(ctx, b, s, "at measurement")

	t := bigTime(ctx, b, s, rec, func() error { _, err := eng.WhatChanged(ctx, q); return err })
	t.candidates, t.parts = len(ans.Candidates), parts
	return t
}

// bigTime times ask, an answer that runs its queries through rec: two
// recorded warm-ups (besides the caller's checked one) pick the heaviest
// query, the slowest call of the two together; then max(b.N, 30) timed
// answers, each followed by the heaviest query alone, so that both see the
// same load. It logs where the time goes.
func bigTime(ctx context.Context, b *testing.B, s *store.Store, rec *bigRecorder, ask func() error) bigMeasured {
	b.Helper()
	rec.start()
	for range 2 {
		if err := ask(); err != nil {
			b.Fatal(err)
		}
	}
	warm, calls := map[string]time.Duration{}, map[string]bigCall{}
	for _, c := range rec.stop() {
		warm[c.key()] += c.took
		calls[c.key()] = c
	}
	var heavy bigCall
	for k, d := range warm {
		if heavy.query == "" || d > warm[heavy.key()] {
			heavy = calls[k]
		}
	}
	bigLoad()
	runs := max(b.N, 30)
	lat := make([]time.Duration, 0, runs)
	inStore := make([]time.Duration, 0, runs) // the summed time of each answer's queries
	alone := make([]time.Duration, 0, runs)   // heavy's time alone, its rows drained, not scanned
	stats := map[string]*bigCallStat{}
	var order []*bigCallStat // order is the calls in the order of the first answer.
	b.ResetTimer()
	for range runs {
		rec.start()
		start := time.Now()
		if err := ask(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		var sum time.Duration
		for _, c := range rec.stop() {
			sum += c.took
			st := stats[c.key()]
			if st == nil {
				st = &bigCallStat{call: c}
				stats[c.key()] = st
				order = append(order, st)
			}
			st.took = append(st.took, c.took)
		}
		inStore = append(inStore, sum)
		b.StopTimer()
		start = time.Now()
		if _, err := bigDrain(ctx, s.Engine(), heavy.query, heavy.params); err != nil {
			b.Fatal(err)
		}
		alone = append(alone, time.Since(start))
		b.StartTimer()
	}
	b.StopTimer()
	bigLoad()
	besides := make([]time.Duration, runs)
	for i := range lat {
		besides[i] = lat[i] - inStore[i]
	}
	bigLogf("per answer: p50 %.1f ms in the store's queries (summed), p50 %.1f ms besides",
		bigMS(bigPercentile(inStore, 0.5)), bigMS(bigPercentile(besides, 0.5)))
	bigLogQueries(order)
	bigExplain(ctx, s.Engine(), heavy)

	var inside time.Duration
	if st := stats[heavy.key()]; st != nil {
		inside = bigPercentile(st.took, 0.5)
	}
	return bigMeasured{
		queries: len(order), runs: runs,
		p50: bigPercentile(lat, 0.5), p95: bigPercentile(lat, 0.95),
		heavy: heavy, heavyAlone: bigPercentile(alone, 0.5), heavyInside: inside,
	}
}

// measureImpactBigStore estimates the impact of sc's incident over the
// hour before the alert, first on its service, then on every service (the
// widest scope a question can have), checking that someone was hurt.
func measureImpactBigStore(ctx context.Context, b *testing.B, s *store.Store, sc *scenario.Scenario) (one, all bigMeasured) {
	b.Helper()
	rec := &bigRecorder{Engine: s.Engine()}
	rs, err := store.New(rec, store.Options{Database: s.Database()})
	if err != nil {
		b.Fatal(err)
	}
	an := impact.New(rs, impact.DefaultConfig())
	var services []string
	for _, svc := range sc.Batch.Services {
		services = append(services, svc.Service)
	}
	for i, scope := range [][]string{{sc.Service}, services} {
		q := impact.Query{Services: scope, From: sc.Detected.Add(-time.Hour), To: sc.Detected, Onset: sc.Onset}
		rep, err := an.Impact(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if rep.AffectedUsers.Observed == 0 || len(rep.Customers) == 0 {
			b.Fatalf("impact on %v: nobody hurt: %+v", scope, rep.AffectedUsers)
		}
		bigLogf("impact on %d service(s) over 1h: %d users seen, %.0f estimated [%.0f, %.0f], %d customers, failures %.0f",
			len(scope), rep.AffectedUsers.Observed, rep.AffectedUsers.Estimate, rep.AffectedUsers.Low, rep.AffectedUsers.High,
			len(rep.Customers), rep.Failures)
		m := bigTime(ctx, b, s, rec, func() error { _, err := an.Impact(ctx, q); return err })
		if i == 0 {
			one = m
		} else {
			all = m
		}
	}
	return one, all
}

// bigLogQueries logs where an answer's time in the store goes: each
// statement's calls and the sum of their p50s, then the slowest calls.
func bigLogQueries(calls []*bigCallStat) {
	type statement struct {
		text  string
		calls int
		sum   time.Duration
		rows  int
	}
	byText := map[string]*statement{}
	var stmts []*statement
	for _, st := range calls {
		t := byText[st.call.query]
		if t == nil {
			t = &statement{text: st.call.statement()}
			byText[st.call.query] = t
			stmts = append(stmts, t)
		}
		t.calls++
		t.sum += bigPercentile(st.took, 0.5)
		t.rows += st.call.rows
	}
	slices.SortStableFunc(stmts, func(a, b *statement) int { return cmp.Compare(b.sum, a.sum) })
	bigLogf("%d queries per answer, by statement: the sum of the calls' p50, calls, rows returned", len(calls))
	for _, t := range stmts {
		bigLogf("  %8.1f ms %4d calls %8d rows  %s", bigMS(t.sum), t.calls, t.rows, t.text)
	}
	slowest := slices.Clone(calls)
	slices.SortStableFunc(slowest, func(a, b *bigCallStat) int {
		return cmp.Compare(bigPercentile(b.took, 0.5), bigPercentile(a.took, 0.5))
	})
	bigLogf("the slowest calls, p50 inside the answer, rows returned:")
	for _, st := range slowest[:min(10, len(slowest))] {
		bigLogf("  %8.1f ms %8d rows  %s", bigMS(bigPercentile(st.took, 0.5)), st.call.rows, st.call.label())
	}
}

// bigBuild is what buildBigStore built.
type bigBuild struct {
	took time.Duration
	rows map[string]uint64 // rows is the deduplicated count of each table.
}

// buildBigStore writes a generated scenario into s and grows it to the
// target volumes times scale, logging what it built and how long it took.
func buildBigStore(ctx context.Context, b *testing.B, s *store.Store, scale float64) (*scenario.Scenario, bigBuild) {
	b.Helper()
	begin := time.Now()
	opt, err := bigScenarioOptions()
	if err != nil {
		b.Fatal(err)
	}
	bigLogf("chose seed %d in %v", opt.Seed, time.Since(begin).Round(time.Millisecond))
	sc, err := scenario.Generate(opt)
	if err != nil {
		b.Fatal(err)
	}
	genTook := time.Since(begin)
	bigLoad()
	start := time.Now()
	if err := s.Write(ctx, &sc.Batch); err != nil {
		b.Fatal(err)
	}
	bigLogf("generated %d errors, %d logs, %d metric points, %d changes in %v, written in %v",
		len(sc.Batch.Errors), len(sc.Batch.Logs), len(sc.Batch.Metrics), len(sc.Batch.Changes),
		genTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if n := len(sc.Batch.Metrics); float64(n) < scale*bigMinMetrics {
		b.Fatalf("the generator wrote %d metric points, fewer than the %d the benchmark is about", n, bigMinMetrics)
	}
	var cause *event.Change
	for i, c := range sc.Batch.Changes {
		if c.ID == sc.ExpectedCause {
			cause = &sc.Batch.Changes[i]
		}
	}
	if cause == nil {
		b.Fatalf("the scenario has no cause change %q", sc.ExpectedCause)
	}
	var services []string
	for _, sv := range sc.Batch.Services {
		services = append(services, sv.Service)
	}
	// The sources of the copies: every error event, the log lines with a
	// trace (see otel_logs.sql).
	logSource := 0
	for _, l := range sc.Batch.Logs {
		if l.TraceID != "" {
			logSource++
		}
	}
	fills := []struct {
		table  string
		sql    string
		params map[string]string
	}{
		{"errors", fillErrorsSQL, bigCopyParams(len(sc.Batch.Errors), len(sc.Batch.Errors), scale*bigErrors,
			"jitter_ms", "20000")},
		{"otel_logs", fillLogsSQL, bigCopyParams(len(sc.Batch.Logs), logSource, scale*bigLogs,
			"jitter_ns", "20000000000")},
		{"changes", fillChangesSQL, map[string]string{
			"n":        store.ParamInt(int64(max(0, int(scale*bigChanges)-len(sc.Batch.Changes)))),
			"services": store.ParamStrings(services),
			"start":    store.ParamTime(sc.Start),
			"days":     store.ParamInt(int64(sc.Options.Days)),
			// Like the generator's freeze of the cause's deploys, but of
			// every kind: at this density a flag flip of the cause's
			// service would land between the cause and the onset.
			"frozen":      store.ParamStrings([]string{sc.CauseService, sc.Service}),
			"freeze_from": store.ParamTime(cause.Time.Add(-time.Hour)),
			"freeze_to":   store.ParamTime(sc.End),
		}},
	}
	for _, f := range fills {
		start := time.Now()
		if err := s.Engine().Exec(ctx, f.sql, f.params); err != nil {
			b.Fatalf("fill %s: %v", f.table, err)
		}
		bigLogf("filled %s in %v", f.table, time.Since(start).Round(time.Millisecond))
	}
	built := bigBuild{took: time.Since(begin), rows: map[string]uint64{}}
	bigLogf("store built in %v", built.took.Round(time.Second))
	for _, table := range []string{"errors", "otel_logs", "metric_points", "changes"} {
		start := time.Now()
		n, err := s.Count(ctx, table)
		if err != nil {
			b.Fatal(err)
		}
		built.rows[table] = n
		bigLogf("%-13s %11d rows (deduplicated count in %v)", table, n, time.Since(start).Round(time.Millisecond))
	}
	bigLogParts(ctx, b, s, "after the build")
	bigLogf("question: what changed for %s at %s? (the cause %s is a %s of %s at %s; onset %s)", sc.Service,
		sc.Detected.Format(time.DateTime), sc.ExpectedCause, cause.Kind, sc.CauseService,
		cause.Time.Format(time.TimeOnly), sc.Onset.Format(time.TimeOnly))
	return sc, built
}

// bigScenarioOptions are the options of the benchmark's scenario: a week
// of 12 services at ten times the default traffic, with the first of 16
// seeds whose question covers the most services, so that the answer reads
// as much of the store as a question can. The search runs at the default
// traffic, which is quick; the traffic scale does not choose the service.
func bigScenarioOptions() (scenario.Options, error) {
	opt := scenario.Options{Days: 7, Services: 12, Start: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)}
	widest := 0
	for seed := uint64(1); seed <= 16; seed++ {
		o := opt
		o.Seed = seed
		sc, err := scenario.Generate(o)
		if err != nil {
			return opt, err
		}
		if n := len(correlate.Dependencies(sc.Topology, sc.Service)); n > widest {
			opt.Seed, widest = seed, n
		}
	}
	opt.TrafficScale = 10
	return opt, nil
}

// bigCopyParams are the parameters of a resampling fill that grows a table
// of have rows, source of which can be copied, to about want rows: each
// source row is copied `copies` times, and once more for extra_ppm per
// million of them.
func bigCopyParams(have, source int, want float64, jitterName, jitter string) map[string]string {
	per := 0.0
	if source > 0 {
		per = max(0, want-float64(have)) / float64(source)
	}
	whole := math.Floor(per)
	return map[string]string{
		"copies":    store.ParamInt(int64(whole)),
		"extra_ppm": store.ParamInt(int64(math.Round((per - whole) * 1e6))),
		jitterName:  jitter,
	}
}

const bigPartsQuery = `
SELECT table, count(), sum(rows), sum(bytes_on_disk), sum(data_uncompressed_bytes)
FROM system.parts
WHERE database = currentDatabase() AND active
GROUP BY table
ORDER BY table`

// bigParts is the active parts of every table: how many, and their bytes
// on disk.
type bigParts struct{ count, bytes uint64 }

// bigLogParts logs the active parts of each table and their size.
func bigLogParts(ctx context.Context, b *testing.B, s *store.Store, when string) bigParts {
	b.Helper()
	rows, err := s.Engine().Query(ctx, bigPartsQuery, nil)
	if err != nil {
		b.Fatalf("read parts: %v", err)
	}
	defer rows.Close()
	var all bigParts
	var lines []string
	for rows.Next() {
		var table string
		var parts, n, disk, raw uint64
		if err := rows.Scan(&table, &parts, &n, &disk, &raw); err != nil {
			b.Fatalf("read parts: %v", err)
		}
		all.count += parts
		all.bytes += disk
		lines = append(lines, fmt.Sprintf("  %-22s %4d parts %11d rows %8.3f GB on disk (%.3f GB uncompressed)",
			table, parts, n, bigGB(disk), bigGB(raw)))
	}
	if err := rows.Err(); err != nil {
		b.Fatalf("read parts: %v", err)
	}
	bigLogf("active parts %s: %d, %.3f GB on disk\n%s", when, all.count, bigGB(all.bytes), strings.Join(lines, "\n"))
	return all
}

// bigExplain logs how ClickHouse plans c: the indexes and parts it selects,
// and its estimate of the rows it reads. It is diagnosis, so a failure is
// logged, not fatal.
func bigExplain(ctx context.Context, eng store.Engine, c bigCall) {
	for _, prefix := range []string{"EXPLAIN indexes = 1", "EXPLAIN ESTIMATE"} {
		rows, err := eng.Query(ctx, prefix+" "+c.query, c.params)
		if err != nil {
			bigLogf("%s of the heaviest query: %v", prefix, err)
			continue
		}
		var out []string
		for rows.Next() {
			var line string
			if prefix == "EXPLAIN ESTIMATE" {
				var db, table string
				var parts, n, marks uint64
				if err := rows.Scan(&db, &table, &parts, &n, &marks); err != nil {
					out = append(out, err.Error())
					break
				}
				line = fmt.Sprintf("  %s: %d parts, %d rows, %d marks", table, parts, n, marks)
			} else if err := rows.Scan(&line); err != nil {
				out = append(out, err.Error())
				break
			}
			out = append(out, line)
		}
		if err := rows.Err(); err != nil {
			out = append(out, err.Error())
		}
		rows.Close()
		bigLogf("%s of the heaviest query:\n%s", prefix, strings.Join(out, "\n"))
	}
}

// bigDrain runs query and reads every row without scanning it.
func bigDrain(ctx context.Context, eng store.Engine, query string, params map[string]string) (int, error) {
	rows, err := eng.Query(ctx, query, params)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// bigRecorder is a store.Engine that times every query while recording is
// on. It is safe for concurrent use: the correlate engine may read in
// parallel.
type bigRecorder struct {
	store.Engine

	mu    sync.Mutex // mu guards on and calls.
	on    bool
	calls []bigCall
}

// bigCall is one query as the engine ran it, timed from the call to Query
// to the Close of its rows: the decoding and scanning of every row are in.
type bigCall struct {
	query  string
	params map[string]string
	took   time.Duration
	rows   int
}

// key identifies the same call across answers: the statement and its
// parameter values.
func (c bigCall) key() string {
	var sb strings.Builder
	sb.WriteString(c.query)
	for _, k := range slices.Sorted(maps.Keys(c.params)) {
		fmt.Fprintf(&sb, "\x00%s=%s", k, c.params[k])
	}
	return sb.String()
}

// statement is the query on one line, shortened.
func (c bigCall) statement() string {
	q := strings.Join(strings.Fields(c.query), " ")
	if r := []rune(q); len(r) > 150 {
		q = string(r[:149]) + "…"
	}
	return q
}

// label is the statement and its parameters.
func (c bigCall) label() string {
	q := c.statement()
	var ps []string
	for _, k := range slices.Sorted(maps.Keys(c.params)) {
		v := c.params[k]
		if r := []rune(v); len(r) > 60 {
			v = string(r[:59]) + "…"
		}
		ps = append(ps, k+"="+v)
	}
	return q + " [" + strings.Join(ps, " ") + "]"
}

// bigCallStat is one distinct call's times over the measured answers.
type bigCallStat struct {
	call bigCall
	took []time.Duration
}

// start clears the record and starts recording.
func (r *bigRecorder) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on, r.calls = true, nil
}

// stop stops recording and returns the calls recorded since start.
func (r *bigRecorder) stop() []bigCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.calls
}

func (r *bigRecorder) Query(ctx context.Context, query string, params map[string]string) (store.Rows, error) {
	start := time.Now()
	rows, err := r.Engine.Query(ctx, query, params)
	if err != nil {
		return nil, err
	}
	return &bigRecordedRows{Rows: rows, r: r, call: bigCall{query: query, params: params}, start: start}, nil
}

// bigRecordedRows records its query when it is closed.
type bigRecordedRows struct {
	store.Rows
	r      *bigRecorder
	call   bigCall
	start  time.Time
	closed bool
}

func (rr *bigRecordedRows) Next() bool {
	ok := rr.Rows.Next()
	if ok {
		rr.call.rows++
	}
	return ok
}

func (rr *bigRecordedRows) Close() error {
	err := rr.Rows.Close()
	if rr.closed {
		return err
	}
	rr.closed = true
	rr.call.took = time.Since(rr.start)
	rr.r.mu.Lock()
	if rr.r.on {
		rr.r.calls = append(rr.r.calls, rr.call)
	}
	rr.r.mu.Unlock()
	return err
}

// bigPercentile returns the q-quantile of d, the nearest rank below; it
// sorts d.
func bigPercentile(d []time.Duration, q float64) time.Duration {
	slices.Sort(d)
	return d[int(q*float64(len(d)-1))]
}

// bigLogf writes one line of the report to stderr at once: the testing
// package keeps only the first ten lines a benchmark logs, and a build that
// takes minutes is worth following as it goes.
func bigLogf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bigstore: "+format+"\n", args...)
}

// bigLoad logs the system's load average: the machine may be shared, and
// other work skews every time measured here.
func bigLoad() {
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		bigLogf("load average %s", strings.TrimSpace(string(l)))
	}
}

func bigMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func bigGB(n uint64) float64 { return float64(n) / (1 << 30) }

// bigFreeDisk is the disk space an unprivileged user may fill at path.
func bigFreeDisk(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
