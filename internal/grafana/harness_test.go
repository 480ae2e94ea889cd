package grafana

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

// A conversation is a recorded exchange with Grafana's HTTP API, one list
// of request/response pairs per sync, as Grafana's documentation shows
// them. The fake Grafana below checks each request against the next pair
// and answers with its response.
type conversation struct {
	Description string `json:"description"`
	Syncs       []struct {
		// Grafana "refused" means nothing listens on its address during
		// this sync (connection refused); Exchanges must be empty.
		Grafana   string     `json:"grafana,omitempty"`
		Exchanges []exchange `json:"exchanges"`
		// WantError says the sync must fail; Result is what it must
		// report.
		WantError bool    `json:"want_error"`
		Result    *Result `json:"result,omitempty"`
		// Records are the annotation ids the store must hold after it, by
		// key; a key mapped to 0 must have no record.
		Records map[string]int64 `json:"records,omitempty"`
	} `json:"syncs"`
}

type exchange struct {
	Request struct {
		Method string              `json:"method"`
		Path   string              `json:"path"`
		Query  map[string][]string `json:"query,omitempty"`
		// Headers must be present with these values; AbsentHeaders must
		// not be present.
		Headers       map[string]string `json:"headers,omitempty"`
		AbsentHeaders []string          `json:"absent_headers,omitempty"`
		// Body lists JSON fields the body must have, with these values;
		// AbsentFields must not be in it.
		Body         map[string]json.RawMessage `json:"body,omitempty"`
		AbsentFields []string                   `json:"absent_fields,omitempty"`
	} `json:"request"`
	Response struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers,omitempty"`
		// Body is sent as is (a JSON string, for a body that is not
		// JSON, as the text it holds), except that a string "$data:ID" anywhere in
		// it becomes the data object posted for the annotation Grafana
		// numbered ID, as Grafana returns what it was given.
		Body json.RawMessage `json:"body,omitempty"`
	} `json:"response"`
}

func loadConversation(t *testing.T, name string) conversation {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var c conversation
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// fakeGrafana replays exchanges on a fixed address that can be taken down
// (nothing listening: connection refused) and brought back.
type fakeGrafana struct {
	t    *testing.T
	addr string

	mu      sync.Mutex
	queue   []exchange
	posted  map[int64]json.RawMessage // data posted per id Grafana gave
	srv     *http.Server
	stopped chan struct{}
}

func newFakeGrafana(t *testing.T) *fakeGrafana {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeGrafana{t: t, addr: ln.Addr().String(), posted: map[int64]json.RawMessage{}}
	f.serve(ln)
	t.Cleanup(f.down)
	return f
}

func (f *fakeGrafana) url() string { return "http://" + f.addr }

func (f *fakeGrafana) serve(ln net.Listener) {
	f.srv = &http.Server{Handler: http.HandlerFunc(f.handle)}
	f.stopped = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		srv.Serve(ln)
	}(f.srv, f.stopped)
}

// down closes the listener and every connection: new requests are refused.
func (f *fakeGrafana) down() {
	if f.srv == nil {
		return
	}
	f.srv.Close()
	<-f.stopped
	f.srv = nil
}

// up listens again on the same address.
func (f *fakeGrafana) up() {
	if f.srv != nil {
		return
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("listen again on %s: %v", f.addr, err)
	}
	f.serve(ln)
}

func (f *fakeGrafana) expect(ex []exchange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append([]exchange(nil), ex...)
}

// pending returns the exchanges not yet requested.
func (f *fakeGrafana) pending() []exchange {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queue
}

func (f *fakeGrafana) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	desc := r.Method + " " + r.URL.RequestURI()
	if len(f.queue) == 0 {
		f.t.Errorf("unexpected request %s %s", desc, body)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	ex := f.queue[0]
	f.queue = f.queue[1:]
	for _, p := range checkRequest(ex, r, body) {
		f.t.Errorf("%s: %s", desc, p)
	}
	// Remember what was posted, for "$data:ID" in later responses.
	if r.Method == http.MethodPost && ex.Response.Status == http.StatusOK {
		var resp struct{ ID int64 }
		var req struct{ Data json.RawMessage }
		if json.Unmarshal(ex.Response.Body, &resp) == nil && json.Unmarshal(body, &req) == nil && resp.ID != 0 {
			f.posted[resp.ID] = req.Data
		}
	}
	for k, v := range ex.Response.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(ex.Response.Status)
	body = f.substitute(ex.Response.Body)
	// A proxy's error page is recorded as a JSON string; it is sent as
	// the text it holds.
	var text string
	if !strings.Contains(w.Header().Get("Content-Type"), "json") && json.Unmarshal(body, &text) == nil {
		body = []byte(text)
	}
	w.Write(body)
}

func (f *fakeGrafana) substitute(b json.RawMessage) []byte {
	if !bytes.Contains(b, []byte(`"$data:`)) {
		return b
	}
	s := string(b)
	for id, d := range f.posted {
		s = strings.ReplaceAll(s, `"$data:`+strconv.FormatInt(id, 10)+`"`, string(d))
	}
	return []byte(s)
}

// checkRequest lists how r differs from the recorded request.
func checkRequest(ex exchange, r *http.Request, body []byte) []string {
	var problems []string
	want := ex.Request
	if r.Method != want.Method || r.URL.Path != want.Path {
		return []string{fmt.Sprintf("want %s %s", want.Method, want.Path)}
	}
	if want.Query != nil {
		got := map[string][]string(r.URL.Query())
		for k, v := range got {
			got[k] = slices.Sorted(slices.Values(v))
		}
		if !reflect.DeepEqual(got, want.Query) {
			problems = append(problems, fmt.Sprintf("query %v, want %v", got, want.Query))
		}
	}
	for k, v := range want.Headers {
		if got := r.Header.Get(k); got != v {
			problems = append(problems, fmt.Sprintf("header %s = %q, want %q", k, got, v))
		}
	}
	for _, k := range want.AbsentHeaders {
		if _, ok := r.Header[http.CanonicalHeaderKey(k)]; ok {
			problems = append(problems, fmt.Sprintf("header %s present, want none", k))
		}
	}
	if want.Body == nil && want.AbsentFields == nil {
		return problems
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(body, &got); err != nil {
		return append(problems, fmt.Sprintf("body is not a JSON object: %v", err))
	}
	for k, v := range want.Body {
		if !jsonEqual(got[k], v) {
			problems = append(problems, fmt.Sprintf("body field %s = %s, want %s", k, got[k], v))
		}
	}
	for _, k := range want.AbsentFields {
		if _, ok := got[k]; ok {
			problems = append(problems, fmt.Sprintf("body field %s = %s, want it absent", k, got[k]))
		}
	}
	return problems
}

// jsonEqual compares got with want; an object in want only needs its own
// fields in got (so a recording can check data's key without its hash).
func jsonEqual(got, want json.RawMessage) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	var x, y any
	if json.Unmarshal(got, &x) != nil || json.Unmarshal(want, &y) != nil {
		return false
	}
	return subset(x, y)
}

func subset(got, want any) bool {
	w, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(got, want)
	}
	g, ok := got.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range w {
		if gv, ok := g[k]; !ok || !subset(gv, v) {
			return false
		}
	}
	return true
}

// memStore is the Store in memory, with switches to fail.
type memStore struct {
	mu          sync.Mutex
	changes     []event.Change
	incidents   map[string][]store.Incident
	snapshots   map[string][]store.Snapshot
	annotations map[string]store.Annotation
	writes      int
	failWrites  bool
}

func newMemStore() *memStore {
	return &memStore{incidents: map[string][]store.Incident{}, snapshots: map[string][]store.Snapshot{}, annotations: map[string]store.Annotation{}}
}

func (m *memStore) ChangesBetween(_ context.Context, from, to time.Time, limit int) ([]event.Change, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []event.Change
	for _, c := range m.changes {
		if !c.Time.Before(from) && c.Time.Before(to) {
			out = append(out, c)
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

func (m *memStore) CurrentIncidents(_ context.Context, since time.Time, limit int) ([]store.Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Incident
	for _, h := range m.incidents {
		cur := h[len(h)-1]
		if cur.Status != "resolved" || !cur.UpdatedAt.Before(since) {
			out = append(out, cur)
		}
	}
	slices.SortFunc(out, func(a, b store.Incident) int { return b.OpenedAt.Compare(a.OpenedAt) })
	return out[:min(limit, len(out))], nil
}

func (m *memStore) CurrentIncident(_ context.Context, id string) (store.Incident, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	hist := m.incidents[id]
	if len(hist) == 0 {
		return store.Incident{}, false, nil
	}
	return hist[len(hist)-1], true, nil
}

func (m *memStore) LatestSnapshots(_ context.Context, ids []string) (map[string]store.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]store.Snapshot{}
	for _, id := range ids {
		for _, sn := range m.snapshots[id] {
			if sn.Causes != "" {
				out[id] = sn
			}
		}
	}
	return out, nil
}

func (m *memStore) Annotations(_ context.Context, keys []string) (map[string]store.Annotation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]store.Annotation{}
	for _, k := range keys {
		if a, ok := m.annotations[k]; ok {
			out[k] = a
		}
	}
	return out, nil
}

func (m *memStore) WriteAnnotation(_ context.Context, a store.Annotation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWrites {
		return fmt.Errorf("store unavailable")
	}
	m.writes++
	m.annotations[a.Key] = a
	return nil
}

func (m *memStore) addIncident(in store.Incident) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.incidents[in.ID] = append(m.incidents[in.ID], in)
}
