package main

// These tests build the correlator binary once and run it as a user would:
// a server on its own data directory, imports, queries and the demo. Each
// process opens its own embedded store, so they do not share the
// one-directory-per-process limit of the test binary.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/spool"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/chdb"
)

var demoSeeds = flag.String("demo-seeds", "1,2,3,4,5", "comma-separated seeds TestDemo runs `correlator demo` with, two at a time (each takes 5-10 s)")

// binary is the correlator built by TestMain.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if dir := os.Getenv(dumpErrorsEnv); dir != "" {
		// A child started by TestKillMidIngest: it opens the store, which
		// this process may not, having opened another data directory.
		os.Exit(dumpErrors(dir))
	}
	dir, err := os.MkdirTemp("", "correlator-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "correlator")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build correlator:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is the environment of the processes: the test's own, without any
// correlator setting but the library path, so that a developer's
// CORRELATOR_TOKENS cannot change what is tested.
func env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CORRELATOR_") && !strings.HasPrefix(kv, "CORRELATOR_CHDB_LIB=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// result is a finished command.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the binary to completion.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env, cmd.Dir = env(), t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("correlator %s: %v", strings.Join(args, " "), err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// logLines collects a process's stderr and reports each line.
type logLines struct {
	mu      sync.Mutex // mu guards all and partial.
	all     bytes.Buffer
	partial []byte
	onLine  func(string)
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.onLine(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// server is a running `correlator serve`.
type server struct {
	cmd  *exec.Cmd
	addr string
	logs *logLines
	done chan struct{} // done is closed when the process has exited.
	err  error         // err is cmd.Wait's error, set before done closes.
}

// startServer starts `correlator serve` and waits until it logs the
// address it serves on.
func startServer(t *testing.T, dataDir, listen string, extraEnv ...string) *server {
	t.Helper()
	return startServerArgs(t, []string{"serve", "--data-dir", dataDir, "--listen", listen}, extraEnv...)
}

// startServerArgs starts correlator with args (a serve command line).
func startServerArgs(t *testing.T, args []string, extraEnv ...string) *server {
	t.Helper()
	addr := make(chan string, 1)
	s := &server{done: make(chan struct{})}
	s.logs = &logLines{onLine: func(line string) {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
			addr <- rec.Addr
		}
	}}
	s.cmd = exec.Command(binary, args...)
	s.cmd.Env, s.cmd.Dir = env(extraEnv...), t.TempDir()
	s.cmd.Stderr = s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case s.addr = <-addr:
	case <-s.done:
		t.Fatalf("server exited before serving: %v\n%s", s.err, s.logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not log its address in 60 s:\n%s", s.logs)
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not stop in 60 s after SIGTERM:\n%s", s.logs)
	}
	if s.err != nil {
		t.Fatalf("server exited with %v after SIGTERM:\n%s", s.err, s.logs)
	}
}

// call sends one API request and decodes the envelope's data into data
// when the answer is 200.
func (s *server) call(t *testing.T, method, path, token, body string, data any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK && data != nil {
		var env struct {
			Status string          `json:"status"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &env); err != nil || env.Status != "success" {
			t.Fatalf("%s %s: not a success envelope (%v):\n%.1000s", method, path, err, raw)
		}
		if err := json.Unmarshal(env.Data, data); err != nil {
			t.Fatalf("%s %s: decode data: %v\n%.1000s", method, path, err, env.Data)
		}
	}
	return resp.StatusCode
}

// answer is the documented JSON of a "what changed?" answer.
type answer struct {
	Service string `json:"service"`
	Window  struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
	} `json:"window"`
	Onset       time.Time `json:"onset"`
	OnsetSource string    `json:"onset_source"`
	Scope       []string  `json:"scope"`
	Candidates  []struct {
		Rank   int     `json:"rank"`
		Score  float64 `json:"score"`
		Change struct {
			ID      string `json:"id"`
			Kind    string `json:"kind"`
			Service string `json:"service"`
		} `json:"change"`
		Evidence []struct {
			Kind    string `json:"kind"`
			Summary string `json:"summary"`
		} `json:"evidence"`
	} `json:"candidates"`
}

func (a answer) ids() []string {
	var ids []string
	for _, c := range a.Candidates {
		ids = append(ids, c.Change.ID)
	}
	return ids
}

// checkRanksFirst fails unless cause is the first of well-formed
// candidates.
func checkRanksFirst(t *testing.T, a answer, cause string) {
	t.Helper()
	if len(a.Candidates) == 0 {
		t.Fatalf("no candidates; want %s first", cause)
	}
	for i, c := range a.Candidates {
		if c.Rank != i+1 || c.Change.ID == "" || len(c.Evidence) == 0 || c.Score < 0 || c.Score > 1 {
			t.Errorf("candidate %d malformed: %+v", i, c)
		}
	}
	if got := a.Candidates[0].Change.ID; got != cause {
		t.Errorf("rank 1 is %s, want the injected cause %s; ranking %v", got, cause, a.ids())
	}
}

// testScenario is a small production with a bad deploy, fixed in the past
// so that it is the same on every run and every record is acceptable.
func testScenario(t *testing.T) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Generate(scenario.Options{Seed: 3, Days: 1, Services: 5, Start: time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// kindCounts is the number of records of each kind in b.
func kindCounts(b *event.Batch) map[event.Kind]int {
	return map[event.Kind]int{
		event.KindChanges: len(b.Changes), event.KindErrors: len(b.Errors), event.KindLogs: len(b.Logs),
		event.KindMetrics: len(b.Metrics), event.KindServices: len(b.Services),
	}
}

func whatChangedPath(service string, at time.Time) string {
	return "/api/v1/whatchanged?" + url.Values{"service": {service}, "at": {at.Format(time.RFC3339)}, "lookback": {"2h"}}.Encode()
}

func TestServeIngestAnswerAndFlushOnShutdown(t *testing.T) {
	const token = "test-admin-token-5c1f0e9d8b7a6f5e4d3c"
	tokens := "CORRELATOR_TOKENS=tester:admin:" + token
	sc := testScenario(t)
	input := t.TempDir()
	if err := sc.WriteNDJSON(input); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, "127.0.0.1:0", tokens)

	if code := srv.call(t, "POST", "/api/v1/ingest/changes", "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("ingest without a token: %d, want 401", code)
	}
	want := kindCounts(&sc.Batch)
	for _, kind := range []event.Kind{event.KindServices, event.KindChanges, event.KindMetrics, event.KindErrors, event.KindLogs} {
		body, err := os.ReadFile(filepath.Join(input, string(kind)+".ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		var res struct{ Accepted, Rejected int }
		if code := srv.call(t, "POST", "/api/v1/ingest/"+string(kind), token, string(body), &res); code != http.StatusOK {
			t.Fatalf("ingest %s: status %d", kind, code)
		}
		if res.Accepted != want[kind] || res.Rejected != 0 {
			t.Fatalf("ingest %s: accepted %d, rejected %d; want %d, 0", kind, res.Accepted, res.Rejected, want[kind])
		}
	}

	// The writer flushes every second; ask once all is written.
	srv.waitInserted(t, want)
	// What the store must hold in the end; the logs table deduplicates on
	// content, so identical log lines count once.
	stored := maps.Clone(want)
	stored[event.KindLogs] = distinctLogs(sc.Batch.Logs)
	var before answer
	if code := srv.call(t, "GET", whatChangedPath(sc.Service, sc.Detected), token, "", &before); code != http.StatusOK {
		t.Fatalf("whatchanged: status %d", code)
	}
	checkRanksFirst(t, before, sc.ExpectedCause)

	// A final ingest, of every kind, for a service of its own; SIGTERM
	// follows the last response at once, most likely before the writer's
	// next tick, so that only the flush at shutdown writes it.
	final := finalBatch(sc.Detected)
	for _, kind := range []event.Kind{event.KindServices, event.KindChanges, event.KindMetrics, event.KindErrors, event.KindLogs} {
		var res struct{ Accepted, Rejected int }
		if code := srv.call(t, "POST", "/api/v1/ingest/"+string(kind), token, final[kind], &res); code != http.StatusOK || res.Rejected != 0 {
			t.Fatalf("final ingest of %s: status %d, %+v", kind, code, res)
		}
		stored[kind] += res.Accepted
	}
	srv.stop(t)
	logs := srv.logs.String()
	if !strings.Contains(logs, `"msg":"stopped"`) || strings.Contains(logs, "records lost") {
		t.Errorf("shutdown did not end cleanly:\n%s", logs)
	}

	// The restarted server answers as before, and knows the final changes.
	srv = startServer(t, dataDir, "127.0.0.1:0", tokens)
	var after, finalAns answer
	if code := srv.call(t, "GET", whatChangedPath(sc.Service, sc.Detected), token, "", &after); code != http.StatusOK {
		t.Fatalf("whatchanged after restart: status %d", code)
	}
	checkRanksFirst(t, after, sc.ExpectedCause)
	if fmt.Sprint(after.ids()) != fmt.Sprint(before.ids()) {
		t.Errorf("after restart the ranking is %v, before it was %v", after.ids(), before.ids())
	}
	if code := srv.call(t, "GET", whatChangedPath("final-svc", sc.Detected), token, "", &finalAns); code != http.StatusOK {
		t.Fatalf("whatchanged after restart: status %d", code)
	}
	if len(finalAns.Candidates) != finalChanges {
		t.Errorf("after restart final-svc has %d changes, want the %d of the final ingest: %v", len(finalAns.Candidates), finalChanges, finalAns.ids())
	}
	srv.stop(t)

	// Every accepted record is in the store.
	ctx := context.Background()
	st, err := store.Open(ctx, "", dataDir, store.Options{}, chdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for kind, table := range tables {
		n, err := st.Count(ctx, table)
		if err != nil {
			t.Fatal(err)
		}
		if n != uint64(stored[kind]) {
			t.Errorf("%s: %d records stored, want %d", table, n, stored[kind])
		}
	}
}

// tables maps each kind to its table.
var tables = map[event.Kind]string{event.KindChanges: "changes", event.KindErrors: "errors",
	event.KindLogs: "otel_logs", event.KindMetrics: "metric_points", event.KindServices: "services"}

// waitInserted waits until the server's store metrics count at least want
// rows inserted into each kind's table.
func (s *server) waitInserted(t *testing.T, want map[event.Kind]int) {
	t.Helper()
	var exposition string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + s.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		exposition = string(b)
		done := true
		for kind, n := range want {
			done = done && insertedRows(exposition, tables[kind]) >= n
		}
		if done {
			return
		}
	}
	t.Fatalf("rows not inserted in 30 s; want %v:\n%s", want, exposition)
}

// insertedRows reads correlator_store_insert_rows_total of table from a
// text exposition, 0 when absent.
func insertedRows(exposition, table string) int {
	prefix := fmt.Sprintf("correlator_store_insert_rows_total{table=%q} ", table)
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int(f)
		}
	}
	return 0
}

// finalChanges is the number of changes in finalBatch.
const finalChanges = 4

// finalBatch is the last ingest before shutdown: a few records of every
// kind for final-svc, in the two hours before at.
func finalBatch(at time.Time) map[event.Kind]string {
	var b [5]strings.Builder
	kinds := []event.Kind{event.KindServices, event.KindChanges, event.KindMetrics, event.KindErrors, event.KindLogs}
	ts := func(d time.Duration) string { return at.Add(-d).Format(time.RFC3339Nano) }
	fmt.Fprintln(&b[0], `{"service":"final-svc","depends_on":[]}`)
	for i := 0; i < finalChanges; i++ {
		fmt.Fprintf(&b[1], `{"id":"final-%d","time":%q,"kind":"config","service":"final-svc"}`+"\n", i, ts(time.Duration(10+20*i)*time.Minute))
	}
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b[2], `{"time":%q,"service":"final-svc","name":"requests","value":50}`+"\n", ts(time.Duration(i)*time.Minute))
		fmt.Fprintf(&b[3], `{"id":"final-err-%d","time":%q,"service":"final-svc","type":"E","message":"e"}`+"\n", i, ts(time.Duration(i)*time.Minute))
		fmt.Fprintf(&b[4], `{"time":%q,"service":"final-svc","body":"final log %d"}`+"\n", ts(time.Duration(i)*time.Minute), i)
	}
	out := map[event.Kind]string{}
	for i, k := range kinds {
		out[k] = b[i].String()
	}
	return out
}

// distinctLogs counts logs by the identity the logs table deduplicates on.
func distinctLogs(logs []event.LogRecord) int {
	seen := map[string]bool{}
	for _, l := range logs {
		seen[fmt.Sprint(l.Service, l.Time.UnixNano(), l.TraceID, l.SpanID, l.Body)] = true
	}
	return len(seen)
}

func TestServeWithoutTokensListensOnLoopback(t *testing.T) {
	srv := startServer(t, t.TempDir(), ":0")
	host, _, err := net.SplitHostPort(srv.addr)
	if err != nil || host != "127.0.0.1" {
		t.Errorf("serving on %q, want 127.0.0.1", srv.addr)
	}
	var warned bool
	sc := bufio.NewScanner(strings.NewReader(srv.logs.String()))
	for sc.Scan() {
		var rec struct{ Level, Msg, Listen string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Level == "WARN" && strings.Contains(rec.Msg, "loopback only") {
			warned = true
			if !strings.HasPrefix(rec.Listen, "127.0.0.1:") {
				t.Errorf("warning names listen address %q, want 127.0.0.1:0", rec.Listen)
			}
		}
	}
	if !warned {
		t.Errorf("no warning that the server listens on loopback only:\n%s", srv.logs)
	}
	// Without tokens the API is open (to loopback).
	if code := srv.call(t, "GET", whatChangedPath("api", time.Now()), "", "", &answer{}); code != http.StatusOK {
		t.Errorf("whatchanged without a token: %d, want 200", code)
	}
	srv.stop(t)
}

// importTable parses the table `correlator import` prints: kind to
// accepted and rejected counts.
func importTable(t *testing.T, out string) map[event.Kind][2]int {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || strings.Join(strings.Fields(lines[0]), " ") != "FILE KIND ACCEPTED REJECTED SECONDS" {
		t.Fatalf("import printed no table:\n%s", out)
	}
	rows := map[event.Kind][2]int{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Fatalf("table row %q has %d columns, want 5", l, len(f))
		}
		acc, err1 := strconv.Atoi(f[2])
		rej, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			t.Fatalf("table row %q: counts are not numbers", l)
		}
		rows[event.Kind(f[1])] = [2]int{acc, rej}
	}
	return rows
}

func TestImportAndWhatChanged(t *testing.T) {
	sc := testScenario(t)
	input, dataDir := t.TempDir(), t.TempDir()
	if err := sc.WriteNDJSON(input); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "import", input, "--data-dir", dataDir)
	if r.code != 0 {
		t.Fatalf("import exited %d:\n%s", r.code, r.stderr)
	}
	rows := importTable(t, r.stdout)
	for kind, n := range kindCounts(&sc.Batch) {
		if rows[kind] != [2]int{n, 0} {
			t.Errorf("%s: accepted, rejected = %v, want [%d 0]", kind, rows[kind], n)
		}
	}
	if len(rows) != len(event.Kinds) {
		t.Errorf("table has %d rows, want one per kind:\n%s", len(rows), r.stdout)
	}

	t.Run("bad line", func(t *testing.T) {
		dir := t.TempDir()
		at := sc.Detected.Add(-time.Hour)
		lines := []string{
			fmt.Sprintf(`{"id":"imp-1","time":%q,"kind":"deploy","service":"imported"}`, at.Format(time.RFC3339)),
			fmt.Sprintf(`{"id":"imp-2","time":%q,"kind":"deploy"}`, at.Format(time.RFC3339)),
			fmt.Sprintf(`{"id":"imp-3","time":%q,"kind":"flag","service":"imported"}`, at.Add(time.Minute).Format(time.RFC3339)),
		}
		file := filepath.Join(dir, "changes.ndjson")
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, "import", file, "--data-dir", dataDir)
		if r.code == 0 {
			t.Errorf("import of a file with a bad line exited 0")
		}
		if want := file + `: line 2: field "service"`; !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, r.stderr)
		}
		if got := importTable(t, r.stdout)[event.KindChanges]; got != [2]int{2, 1} {
			t.Errorf("accepted, rejected = %v, want [2 1]", got)
		}
		// The good lines were imported.
		r = runCLI(t, "whatchanged", "--data-dir", dataDir, "--service", "imported", "--at", sc.Detected.Format(time.RFC3339), "--json")
		var a answer
		if err := json.Unmarshal([]byte(r.stdout), &a); r.code != 0 || err != nil {
			t.Fatalf("whatchanged exited %d (%v):\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		if got := fmt.Sprint(a.ids()); got != "[imp-3 imp-1]" && got != "[imp-1 imp-3]" {
			t.Errorf("imported changes %s, want imp-1 and imp-3", got)
		}
	})

	t.Run("whatchanged json", func(t *testing.T) {
		r := runCLI(t, "whatchanged", "--data-dir", dataDir, "--service", sc.Service, "--at", sc.Detected.Format(time.RFC3339), "--lookback", "2h", "--json")
		if r.code != 0 {
			t.Fatalf("whatchanged exited %d:\n%s", r.code, r.stderr)
		}
		// Check the documented field names, then the ranking.
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
		}
		for _, k := range []string{"service", "window", "onset", "onset_source", "scope", "candidates"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("output lacks %q", k)
			}
		}
		var a answer
		if err := json.Unmarshal([]byte(r.stdout), &a); err != nil {
			t.Fatal(err)
		}
		if a.Service != sc.Service || !a.Window.To.Equal(sc.Detected) || !a.Window.From.Equal(sc.Detected.Add(-2*time.Hour)) || a.Onset.IsZero() {
			t.Errorf("service %q, window %v – %v, onset %v; want %s, %v – %v and an onset",
				a.Service, a.Window.From, a.Window.To, a.Onset, sc.Service, sc.Detected.Add(-2*time.Hour), sc.Detected)
		}
		checkRanksFirst(t, a, sc.ExpectedCause)
	})
	t.Run("impact", func(t *testing.T) {
		window := []string{"--data-dir", dataDir, "--service", sc.Service, "--from", sc.Onset.Format(time.RFC3339), "--to", sc.Detected.Format(time.RFC3339)}
		r := runCLI(t, append([]string{"impact", "--json"}, window...)...)
		if r.code != 0 {
			t.Fatalf("impact exited %d:\n%s", r.code, r.stderr)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
		}
		for _, k := range []string{"window", "affected_users", "affected_customers", "active_users", "share", "severity", "customers", "by_service"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("output lacks %q", k)
			}
		}
		var rep struct {
			Users struct {
				Observed int     `json:"observed"`
				Estimate float64 `json:"estimate"`
			} `json:"affected_users"`
			Customers []struct {
				Customer string `json:"customer"`
				Users    int    `json:"users"`
			} `json:"customers"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Users.Observed == 0 || rep.Users.Estimate < float64(rep.Users.Observed) || len(rep.Customers) == 0 {
			t.Fatalf("the incident hurt nobody? %s", r.stdout)
		}

		// The support team's export: the same customers, as CSV.
		r = runCLI(t, append([]string{"impact", "--customers", "--format", "csv"}, window...)...)
		if r.code != 0 {
			t.Fatalf("impact --customers --format csv exited %d:\n%s", r.code, r.stderr)
		}
		records, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if err != nil {
			t.Fatalf("not CSV: %v\n%s", err, r.stdout)
		}
		if got := strings.Join(records[0], ","); got != "customer,users_affected,users_estimated,failures,first_failure_utc,last_failure_utc,top_error,services" {
			t.Errorf("header %s", got)
		}
		if len(records)-1 != len(rep.Customers) {
			t.Fatalf("%d CSV rows, %d customers in the JSON", len(records)-1, len(rep.Customers))
		}
		for i, c := range rep.Customers {
			row := records[i+1]
			if row[0] != c.Customer || row[1] != fmt.Sprint(c.Users) {
				t.Errorf("row %d = %v, want %s with %d users", i+1, row, c.Customer, c.Users)
			}
			if _, err := time.Parse(time.RFC3339, row[4]); err != nil {
				t.Errorf("row %d first failure: %v", i+1, err)
			}
		}

		// And the table for people.
		r = runCLI(t, append([]string{"impact"}, window...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "Impact on "+sc.Service) || !strings.Contains(r.stdout, "90% INTERVAL") {
			t.Errorf("impact table exited %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

func TestImpactFlagErrors(t *testing.T) {
	checkFlagErrors(t, []flagErrorCase{
		{[]string{"impact"}, `flag --service: required (or give incident)`},
		{[]string{"impact", "--service", "api"}, "flag --from: required"},
		{[]string{"impact", "--service", "api", "--from", "soon"}, `flag --from: cannot parse "soon"`},
		{[]string{"impact", "--service", "api", "--from", "-1h", "--format", "csv"}, "flag --format: csv is the customer export; add --customers"},
		{[]string{"impact", "--service", "api", "--from", "-1h", "--format", "xml"}, `flag --format: unknown format "xml"`},
		{[]string{"impact", "--incident", "inc-404"}, `flag --incident: unknown incident "inc-404"`},
	})
}

// flagErrorCase is a command line that must fail, and what its stderr
// must say.
type flagErrorCase struct {
	args []string
	want string
}

// checkFlagErrors runs each command on an empty store: it must exit
// non-zero, say want on stderr and print nothing on stdout.
func checkFlagErrors(t *testing.T, cases []flagErrorCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, append(tt.args, "--data-dir", t.TempDir())...)
			if r.code == 0 {
				t.Errorf("exited 0")
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr does not contain %q:\n%s", tt.want, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout not empty:\n%s", r.stdout)
			}
		})
	}
}

func TestWhatChangedFlagErrors(t *testing.T) {
	checkFlagErrors(t, []flagErrorCase{
		{[]string{"whatchanged"}, "flag --service is required"},
		{[]string{"whatchanged", "--service", "api", "--at", "yesterday"}, `flag --at: cannot parse "yesterday"`},
		{[]string{"whatchanged", "--service", "api", "--lookback", "0s"}, "flag --lookback: must be positive"},
		{[]string{"whatchanged", "--service", "api", "--onset", "soon"}, "flag --onset:"},
	})
}

func TestDemo(t *testing.T) {
	for _, s := range strings.Split(*demoSeeds, ",") {
		seed := strings.TrimSpace(s)
		t.Run("seed "+seed, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := runCLI(t, "demo", "--json", "--seed", seed, "--data-dir", filepath.Join(t.TempDir(), "demo"))
			t.Logf("demo --seed %s took %.1f s", seed, time.Since(start).Seconds())
			if r.code != 0 {
				t.Fatalf("demo exited %d:\n%s", r.code, r.stderr)
			}
			var out struct {
				ExpectedCause *string `json:"expected_cause"`
				WhatChanged   *answer `json:"whatchanged"`
				Impact        *struct {
					Users struct {
						Observed int `json:"observed"`
					} `json:"affected_users"`
				} `json:"impact"`
				Incident *struct {
					Status     string            `json:"status"`
					Attributes map[string]string `json:"attributes"`
					Snapshots  []struct {
						Trigger string `json:"trigger"`
					} `json:"snapshots"`
				} `json:"incident"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.ExpectedCause == nil || out.WhatChanged == nil || out.Impact == nil || out.Incident == nil {
				t.Fatalf("output is not {expected_cause, whatchanged, impact, incident} (%v):\n%.2000s", err, r.stdout)
			}
			if out.Impact.Users.Observed == 0 {
				t.Errorf("the demo incident hurt no user")
			}
			// The incident's loop: snapshots from open to resolve, the
			// cause confirmed, the post-mortem written on resolve.
			inc := out.Incident
			if n := len(inc.Snapshots); inc.Status != "resolved" || n < 3 || inc.Snapshots[0].Trigger != "open" || inc.Snapshots[n-1].Trigger != "resolve" {
				t.Errorf("demo incident %s with snapshots %+v, want resolved with open … resolve", inc.Status, inc.Snapshots)
			}
			if want := *out.ExpectedCause; want != "" && inc.Attributes["cause"] != want {
				t.Errorf("confirmed cause %q, want %q", inc.Attributes["cause"], want)
			}
			page, err := os.ReadFile(inc.Attributes["postmortem.url"])
			if err != nil {
				t.Fatalf("post-mortem bundle: %v", err)
			}
			if want := *out.ExpectedCause; want != "" && !strings.Contains(string(page), want) {
				t.Errorf("the post-mortem does not name the cause %s", want)
			}
			checkRanksFirst(t, *out.WhatChanged, *out.ExpectedCause)
		})
	}
}

func TestMigratePrint(t *testing.T) {
	for _, tt := range []struct {
		cluster string
		args    []string
	}{
		{"prod", []string{"migrate", "--print", "--cluster", "prod"}},
		{"", []string{"migrate", "--print"}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != 0 {
				t.Fatalf("exited %d:\n%s", r.code, r.stderr)
			}
			var want strings.Builder
			for _, q := range store.MigrationStatements("correlator", tt.cluster) {
				fmt.Fprintf(&want, "%s;\n\n", q)
			}
			if r.stdout != want.String() {
				t.Errorf("printed DDL differs from store.MigrationStatements:\n%s", r.stdout)
			}
			creates := strings.Count(r.stdout, "CREATE TABLE") + strings.Count(r.stdout, "CREATE MATERIALIZED VIEW")
			onCluster := strings.Count(r.stdout, " ON CLUSTER prod")
			if tt.cluster != "" && (creates == 0 || onCluster != creates || !strings.Contains(r.stdout, "ENGINE = Distributed(")) {
				t.Errorf("%d CREATE TABLE or VIEW, %d ON CLUSTER prod: want every table and view created on the cluster, with Distributed tables", creates, onCluster)
			}
			if tt.cluster == "" && strings.Contains(r.stdout, "ON CLUSTER") {
				t.Errorf("single-node DDL has ON CLUSTER")
			}
		})
	}
}

func TestCheckConfigHidesTokens(t *testing.T) {
	const token = "check-config-token-8e7d6c5b4a39281706f5"
	cmd := exec.Command(binary, "check-config", "--data-dir", t.TempDir())
	cmd.Env = env("CORRELATOR_TOKENS=ops:admin:" + token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	if strings.Contains(string(out), token) || !strings.Contains(string(out), "<secret>") {
		t.Errorf("check-config shows the token or no <secret>:\n%s", out)
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tt := range []struct {
		args      []string
		wantPos   []string
		wantQuiet bool
		wantKind  string
	}{
		{[]string{"--quiet", "a", "b"}, []string{"a", "b"}, true, ""},
		{[]string{"a", "--quiet", "b", "--kind", "logs"}, []string{"a", "b"}, true, "logs"},
		{[]string{"a", "--", "--quiet", "-x"}, []string{"a", "--quiet", "-x"}, false, ""},
		{[]string{"--kind=errors", "--", "b"}, []string{"b"}, false, "errors"},
		{nil, nil, false, ""},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("import", flag.ContinueOnError)
			quiet := fs.Bool("quiet", false, "")
			kind := fs.String("kind", "", "")
			pos, err := parseInterspersed(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(pos) != fmt.Sprint(tt.wantPos) || *quiet != tt.wantQuiet || *kind != tt.wantKind {
				t.Errorf("positional %q, quiet %v, kind %q; want %q, %v, %q", pos, *quiet, *kind, tt.wantPos, tt.wantQuiet, tt.wantKind)
			}
		})
	}
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseInterspersed(fs, []string{"a", "--nope"}); err == nil {
		t.Error("an unknown flag after a file is accepted")
	}
}

// dumpErrorsEnv names the data directory a child test process reads the
// errors table of (see dumpErrors); dumpToEnv names the JSON file it writes.
const (
	dumpErrorsEnv = "CORRELATOR_TEST_DUMP_ERRORS_OF"
	dumpToEnv     = "CORRELATOR_TEST_DUMP_TO"
)

// errorsDump is the errors table of a data directory, as dumpErrors
// finds it.
type errorsDump struct {
	IDs          []string `json:"ids"`           // distinct ids, read with FINAL
	Final        uint64   `json:"final"`         // count() FINAL
	Uniq         uint64   `json:"uniq"`          // uniqExact(id) without FINAL
	Raw          uint64   `json:"raw"`           // count() without FINAL: copies not yet merged count
	RawOptimized uint64   `json:"raw_optimized"` // count() after OPTIMIZE TABLE errors FINAL
}

// dumpErrors runs in a child process (TestMain): it writes the errorsDump
// of the store in dir to the file named by dumpToEnv.
func dumpErrors(dir string) int {
	ctx := context.Background()
	st, err := store.Open(ctx, "", dir, store.Options{}, chdb.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	var d errorsDump
	one := func(q string, dst *uint64) {
		if err != nil {
			return
		}
		var rows store.Rows
		if rows, err = st.Engine().Query(ctx, q, nil); err != nil {
			return
		}
		defer rows.Close()
		for rows.Next() {
			if err = rows.Scan(dst); err != nil {
				return
			}
		}
		err = rows.Err()
	}
	one("SELECT count() FROM errors FINAL", &d.Final)
	one("SELECT uniqExact(id) FROM errors", &d.Uniq)
	one("SELECT count() FROM errors", &d.Raw)
	if err == nil {
		var rows store.Rows
		if rows, err = st.Engine().Query(ctx, "SELECT id FROM errors FINAL ORDER BY id", nil); err == nil {
			for rows.Next() {
				var id string
				if err = rows.Scan(&id); err != nil {
					break
				}
				d.IDs = append(d.IDs, id)
			}
			rows.Close()
		}
	}
	if err == nil {
		err = st.Engine().Exec(ctx, "OPTIMIZE TABLE errors FINAL", nil)
	}
	one("SELECT count() FROM errors", &d.RawOptimized)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, _ := json.Marshal(d)
	if err := os.WriteFile(os.Getenv(dumpToEnv), out, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// killBody is request r of client c: n error events with ids of their own.
func killBody(c, r, n int) ([]string, string) {
	var b strings.Builder
	ids := make([]string, n)
	base := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	for i := range n {
		ids[i] = fmt.Sprintf("kill-%d-%05d-%03d", c, r, i)
		at := base.Add(time.Duration(c)*time.Hour + time.Duration(r*n+i)*time.Millisecond)
		fmt.Fprintf(&b, `{"id":%q,"time":%q,"service":"kill-svc","type":"E","message":"request %d record %d"}`+"\n", ids[i], at.Format(time.RFC3339Nano), r, i)
	}
	return ids, b.String()
}

// TestKillMidIngest is the second proof: `correlator serve` is
// killed with SIGKILL while clients are sending (some requests answered,
// others in flight), a torn record is added to the end of its spool (as a
// power loss during a write would leave it; a killed process cannot tear
// one, the kernel completes its writes), and after the restart on the same
// data directory every acknowledged record is stored exactly once.
func TestKillMidIngest(t *testing.T) {
	dataDir := t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "correlator.yml")
	// Small, frequent segments so that at the kill some are written and
	// deleted, some may be written and not yet deleted, and the newest is
	// still being filled.
	if err := os.WriteFile(cfgFile, []byte("ingest:\n  batch_rows: 2000\n  flush_interval: 200ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", "--config", cfgFile, "--data-dir", dataDir, "--listen", "127.0.0.1:0"}
	srv := startServerArgs(t, args)

	const clients, perRequest, killAfter = 4, 250, 60
	var (
		mu          sync.Mutex // mu guards acked, sent and answered.
		acked, sent = map[string]bool{}, map[string]bool{}
		answered    int
		enough      = make(chan struct{})
		wg          sync.WaitGroup
	)
	httpc := &http.Client{Timeout: time.Minute}
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; ; r++ {
				ids, body := killBody(c, r, perRequest)
				mu.Lock()
				for _, id := range ids {
					sent[id] = true
				}
				mu.Unlock()
				resp, err := httpc.Post("http://"+srv.addr+"/api/v1/ingest/errors", "application/x-ndjson", strings.NewReader(body))
				if err != nil {
					return // killed
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("client %d request %d: status %d", c, r, resp.StatusCode)
					return
				}
				// The status line comes after the records were fsynced
				// into the spool: from here on they must not be lost.
				mu.Lock()
				for _, id := range ids {
					acked[id] = true
				}
				if answered++; answered == killAfter {
					close(enough)
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(2 * time.Minute):
		t.Fatalf("fewer than %d requests answered in 2 minutes:\n%s", killAfter, srv.logs)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	wg.Wait()

	// What the kill left in the spool: records acknowledged but not yet in
	// the store, or this test would prove nothing.
	spoolDir := filepath.Join(dataDir, "spool")
	sp, err := spool.Open(spoolDir, spool.Options{})
	if err != nil {
		t.Fatalf("the spool after SIGKILL: %v", err)
	}
	pending := sp.Stats()
	sp.Close()
	if pending.Records == 0 {
		t.Fatalf("nothing waited in the spool at the kill; the kill came too late to test anything")
	}
	segs, _ := filepath.Glob(filepath.Join(spoolDir, "*.seg"))
	newest := segs[len(segs)-1]
	f, err := os.OpenFile(newest, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := append([]byte{0xe8, 0x03, 0, 0, 0x12, 0x34, 0x56, 0x78}, bytes.Repeat([]byte{0x42}, 100)...) // 1000 bytes announced, 100 there
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()

	srv = startServerArgs(t, args)
	logs := srv.logs.String()
	// The newest segment may hold records, or only the header when the
	// kill came right after it was created: either way the torn record goes.
	if !strings.Contains(logs, "replaying spool") || !strings.Contains(logs, "cut a torn record") && !strings.Contains(logs, "removing a segment with no complete record") {
		t.Errorf("the restart did not log the replay and the cut:\n%s", logs)
	}
	// The replay runs in the background; wait until the spool is empty.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if metricValue(t, srv, "correlator_spool_records") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spool was not written in a minute:\n%s", srv.logs)
		}
	}
	srv.stop(t)

	dumpFile := filepath.Join(t.TempDir(), "dump.json")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = env(dumpErrorsEnv+"="+dataDir, dumpToEnv+"="+dumpFile)
	if out, err := child.CombinedOutput(); err != nil {
		t.Fatalf("read the store: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(dumpFile)
	if err != nil {
		t.Fatal(err)
	}
	var d errorsDump
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, id := range d.IDs {
		if !sent[id] {
			t.Errorf("stored id %q was never sent", id)
		}
		stored[id] = true
	}
	lost := 0
	for id := range acked {
		if !stored[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged records lost", lost, len(acked))
	}
	if d.Final != uint64(len(d.IDs)) || d.Uniq != d.Final || d.RawOptimized != d.Final {
		t.Errorf("count FINAL %d, distinct ids %d (%d listed), rows after merging %d: want all equal (no record twice)", d.Final, d.Uniq, len(d.IDs), d.RawOptimized)
	}
	t.Logf("%d records sent, %d acknowledged, %d waiting in the spool at the kill, %d stored (%d rows before merging)",
		len(sent), len(acked), pending.Records, len(d.IDs), d.Raw)
}

// metricValue reads an unlabelled metric from the server's /metrics, -1
// when absent.
func metricValue(t *testing.T, s *server, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func TestCSVTextDefusesFormulas(t *testing.T) {
	for in, want := range map[string]string{
		"cus_1":              "cus_1",
		"=HYPERLINK(\"x\")":  "'=HYPERLINK(\"x\")",
		"+1":                 "'+1",
		"-2":                 "'-2",
		"@SUM(A1)":           "'@SUM(A1)",
		"\tx":                "'\tx",
		"":                   "",
		"TimeoutError: = no": "TimeoutError: = no",
	} {
		if got := csvText(in); got != want {
			t.Errorf("csvText(%q) = %q, want %q", in, got, want)
		}
	}
}
