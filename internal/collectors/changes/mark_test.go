package changes

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/ingest"
)

func TestParseMarkArgsDeploy(t *testing.T) {
	c, err := ParseMarkArgs("deploy", []string{"--service", "api", "--version", "v1.4.2", "--previous", "v1.4.1",
		"--env", "production", "--commit", "a84d88e", "--title", "Ship it", "--at", "2026-11-21T10:00:00Z",
		"--url", "https://ci.example.com/run/7", "--attr", "pipeline=deploy-prod", "--attr", "pr=81"})
	if err != nil {
		t.Fatal(err)
	}
	want := event.Change{Time: t0, Kind: event.ChangeDeploy, Service: "api", Environment: "production", Version: "v1.4.2",
		PreviousVersion: "v1.4.1", Commit: "a84d88e", Title: "Ship it", URL: "https://ci.example.com/run/7", Source: "mark",
		Attributes: map[string]string{"pipeline": "deploy-prod", "pr": "81"}}
	want.ID = IdentityID(&want)
	if got, _ := json.Marshal(c); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("got  %s\nwant %s", got, must(json.Marshal(want)))
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseMarkArgsFlag(t *testing.T) {
	c, err := ParseMarkArgs("flag", []string{"--service=checkout", "--flag", "new-cart", "--old", "10", "--new", "true", "--env", "production"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != event.ChangeFlag || c.Attributes[FlagAttr] != "new-cart" || c.Attributes[OldAttr] != "10%" || c.Attributes[NewAttr] != "on" {
		t.Errorf("got %+v", c)
	}
	if c.Title != "Flag new-cart: 10% → on" || c.ID != "" {
		t.Errorf("title %q id %q (a flag has no identity: the server derives its id)", c.Title, c.ID)
	}
	if time.Since(c.Time) > time.Minute {
		t.Errorf("time %v, want now", c.Time)
	}
}

func TestParseMarkArgsConfig(t *testing.T) {
	c, err := ParseMarkArgs("config", []string{"--service", "api", "--key", "pool_size", "--old", "10", "--new", "50", "--version", "cfg-42"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Attributes["key"] != "pool_size" || c.Attributes[NewAttr] != "50" || c.Title != "api: set pool_size to 50 (was 10)" || c.ID != IdentityID(&c) {
		t.Errorf("got %+v", c)
	}
}

func TestParseMarkArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		kind string
		args []string
		want []string
	}{
		{"deploy", nil, []string{"--service is required", "--version is required for deploy"}},
		{"rollback", []string{"--service", "api"}, []string{"--version is required for rollback"}},
		{"flag", []string{"--service", "api"}, []string{"--flag is required", "--new is required"}},
		{"flag", []string{"--service", "api", "--flag", "f", "--new", "half"}, []string{`--new: "half" is not a flag state`}},
		{"flag", []string{"--service", "api", "--flag", "f", "--new", "on", "--old", "200%"}, []string{"--old:"}},
		{"deploy", []string{"--service", "api", "--version", "1", "--flag", "f"}, []string{"--flag, --key, --old and --new are for flag and config changes"}},
		{"deploy", []string{"--service", "api", "--version", "1", "--at", "yesterday"}, []string{"--at: cannot parse"}},
		{"deploy", []string{"--service", "api", "--version", "1", "--url", "ci/run/7"}, []string{"--url:"}},
		{"deploy", []string{"--service", "api", "--version", "1", "--bogus"}, []string{"flag provided but not defined: -bogus"}},
		{"deploy", []string{"--service", "api", "v1"}, []string{`unexpected argument "v1"`}},
		{"deploy", []string{"--service", "api", "--version", "1", "--attr", "novalue"}, []string{"want key=value"}},
		{"config", []string{"--service", "api", "--new", "5"}, []string{"--old and --new need --key"}},
		{"release", []string{"--service", "api"}, []string{`unknown kind "release"`}},
	} {
		_, err := ParseMarkArgs(tc.kind, tc.args)
		if err == nil {
			t.Errorf("%s %v: no error", tc.kind, tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s %v: error %q does not say %q", tc.kind, tc.args, err, w)
			}
		}
	}
}

// ingestServer answers like POST /api/v1/ingest/changes, decoding with the
// real ingest decoder.
func ingestServer(t *testing.T, token string, fail *atomic.Int32, got *[]event.Change) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/prefix/api/v1/ingest/changes" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		if fail != nil && fail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"unauthorized","error":"invalid bearer token"}`))
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Errorf("content type %q", ct)
		}
		res, err := ingest.Decode(r.Context(), event.KindChanges, r.Body, ingest.Options{}, func(b *event.Batch) error {
			*got = append(*got, b.Changes...)
			return nil
		})
		if err != nil || res.Rejected > 0 {
			t.Errorf("ingest: %v %+v", err, res.Errors)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"accepted": res.Accepted}})
	}))
}

func TestMarkPostsWhatIngestAccepts(t *testing.T) {
	var got []event.Change
	srv := ingestServer(t, "tok-123", nil, &got)
	defer srv.Close()
	c, err := ParseMarkArgs("deploy", []string{"--service", "api", "--version", "v1.4.2", "--env", "production", "--at", "2026-11-21T10:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Mark(context.Background(), srv.Client(), srv.URL+"/prefix/", "tok-123", c); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("server got %d changes", len(got))
	}
	g := got[0]
	if g.ID != c.ID || !g.Time.Equal(c.Time) || g.Version != "v1.4.2" || g.Source != "mark" || !Mergeable(&g) {
		t.Errorf("server decoded %+v from %+v", g, c)
	}
}

func TestMarkRetriesUnavailableAndReportsRefusals(t *testing.T) {
	MarkBackoff = time.Millisecond
	defer func() { MarkBackoff = time.Second }()
	c, _ := ParseMarkArgs("deploy", []string{"--service", "api", "--version", "1"})

	var fail atomic.Int32
	fail.Store(2)
	var got []event.Change
	srv := ingestServer(t, "tok", &fail, &got)
	defer srv.Close()
	if err := Mark(context.Background(), srv.Client(), srv.URL+"/prefix", "tok", c); err != nil || len(got) != 1 {
		t.Fatalf("after two 503s: %v, %d changes", err, len(got))
	}

	fail.Store(5)
	err := Mark(context.Background(), srv.Client(), srv.URL+"/prefix", "tok", c)
	if err == nil || !strings.Contains(err.Error(), "unavailable (503)") {
		t.Errorf("after three 503s: %v", err)
	}

	err = Mark(context.Background(), srv.Client(), srv.URL+"/prefix", "wrong-secret-token", c)
	if err == nil || !strings.Contains(err.Error(), "refused the token (401): invalid bearer token") {
		t.Errorf("wrong token: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-token") {
		t.Error("the error shows the token")
	}
	if err := Mark(context.Background(), nil, "localhost:8080", "", c); err == nil || !strings.Contains(err.Error(), "--server") {
		t.Errorf("bad server URL: %v", err)
	}
}
