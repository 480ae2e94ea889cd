package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/grafana/grafanatest"
	"github.com/correlator/correlator/internal/incident"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/chdb"
)

// TestServeIncidentOutlets runs an incident's whole loop through `serve`:
// opened over the API, its region annotation in Grafana (a model of
// Grafana's documented annotations API), resolved, the post-mortem bundle
// written and its page link recorded on the incident and added to the
// same annotation, in place. The signed live link, handed out by the API
// to a token holder and never stored or pushed to Grafana, opens the page
// without a bearer token; the bare page, a tampered link and a link of
// another incident do not.
func TestServeIncidentOutlets(t *testing.T) {
	g := grafanatest.New()
	gs := httptest.NewServer(g)
	defer gs.Close()
	dir := t.TempDir()
	const (
		apiToken   = "ops-token-0123456789abcdef"
		gfToken    = "gf-token-abcdef0123456789"
		linkSecret = "link-secret-0123456789abcdef012345"
	)
	cfg := fmt.Sprintf(`auth:
  tokens:
    - name: ops
      token: %q
      scopes: [ingest, read]
external_url: https://correlator.test
incidents:
  snapshot_interval: 1m
  link_secret: %q
grafana:
  url: %q
  token: %q
  sync_interval: 1s
postmortem:
  dir: %q
`, apiToken, linkSecret, gs.URL, gfToken, filepath.Join(dir, "pm"))
	cfgFile := filepath.Join(dir, "correlator.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServerArgs(t, []string{"serve", "--config", cfgFile, "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0"})

	type detail struct {
		ID         string            `json:"id"`
		Status     string            `json:"status"`
		Attributes map[string]string `json:"attributes"`
		LiveURL    string            `json:"live_url"`
	}
	var opened detail
	if code := s.call(t, "POST", "/api/v1/incidents", apiToken, `{"services":["api"],"title":"slow checkout"}`, &opened); code != 200 || opened.ID == "" {
		t.Fatalf("POST /api/v1/incidents: %d, %+v", code, opened)
	}
	key := "incident:" + opened.ID
	// eventually polls until ok holds, or fails after 60 s.
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if ok() {
				return
			}
		}
		t.Fatalf("%s: not after 60 s\n%s", what, s.logs)
	}
	eventually("the open incident's region in Grafana", func() bool { return len(g.ByKey()[key]) == 1 })
	if _, _, auth := g.Requests(); auth != "Bearer "+gfToken {
		t.Errorf("Grafana saw Authorization %q", auth)
	}

	var resolved detail
	if code := s.call(t, "POST", "/api/v1/incidents/"+opened.ID+"/resolve", apiToken, `{"cause":"none","note":"restarted api"}`, &resolved); code != 200 {
		t.Fatalf("resolve: %d", code)
	}
	var cur detail
	eventually("the post-mortem location recorded on the incident", func() bool {
		s.call(t, "GET", "/api/v1/incidents/"+opened.ID, apiToken, "", &cur)
		return cur.Attributes["postmortem.url"] != ""
	})
	page := "https://correlator.test/incidents/" + opened.ID
	if got := cur.Attributes["postmortem.url"]; got != page {
		t.Fatalf("postmortem.url = %q, want the plain page %s (a signed link is never stored)", got, page)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "pm", "*", "index.html")); len(files) != 1 {
		t.Errorf("bundle files %v, want one index.html", files)
	}
	eventually("the region updated in place with the resolution and the link", func() bool {
		regions := g.ByKey()[key]
		if len(regions) != 1 {
			return false
		}
		text, _ := regions[0]["text"].(string)
		return strings.Contains(text, page) && strings.Contains(text, "resolved")
	})
	for _, regions := range g.ByKey() {
		for _, a := range regions {
			if text, _ := a["text"].(string); strings.Contains(text, "sig=") {
				t.Errorf("a signed link went to Grafana: %s", text)
			}
		}
	}

	// The live page: open with the signed link the API hands out, closed
	// without it.
	if !strings.HasPrefix(cur.LiveURL, page+"?") || !strings.Contains(cur.LiveURL, "sig=") {
		t.Fatalf("live_url = %q, want the signed page under external_url", cur.LiveURL)
	}
	u, err := url.Parse(cur.LiveURL)
	if err != nil {
		t.Fatal(err)
	}
	if code := s.call(t, "GET", u.RequestURI(), "", "", nil); code != 200 {
		t.Errorf("signed live link without a token: %d, want 200", code)
	}
	if code := s.call(t, "GET", u.Path, "", "", nil); code != 401 {
		t.Errorf("live page without a token or signature: %d, want 401", code)
	}
	q := u.Query()
	q.Set("exp", fmt.Sprint(time.Now().Add(1000*time.Hour).Unix()))
	if code := s.call(t, "GET", u.Path+"?"+q.Encode(), "", "", nil); code != 401 {
		t.Errorf("live link with its expiry pushed back: %d, want 401", code)
	}
	var other detail
	if code := s.call(t, "POST", "/api/v1/incidents", apiToken, `{"services":["web"],"title":"another"}`, &other); code != 200 {
		t.Fatalf("second incident: %d", code)
	}
	if code := s.call(t, "GET", "/incidents/"+other.ID+"?"+u.RawQuery, "", "", nil); code != 401 {
		t.Errorf("one incident's signature on another's page: %d, want 401", code)
	}
	if code := s.call(t, "GET", u.Path, apiToken, "", nil); code != 200 {
		t.Errorf("live page with a read token: %d, want 200", code)
	}
	s.stop(t)
	for _, secret := range []string{apiToken, gfToken, linkSecret} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("a secret is in the server's log")
		}
	}
}

// TestCatchUpAttachesMissedBundles: a resolve whose bundle was never
// attached (queued for a worker that never ran it, as when serve stops
// or the queue is full) is attached by the catch-up scan, once.
func TestCatchUpAttachesMissedBundles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, "", filepath.Join(dir, "data"), store.Options{}, chdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.ExternalURL = "https://correlator.test/"
	cfg.Postmortem.Dir = filepath.Join(dir, "pm")
	// running: the resolve only queues the attach, and no worker runs.
	tr, o, err := newIncidents(st, cfg, slog.New(slog.DiscardHandler), nil, true, incident.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in, err := tr.Open(ctx, incident.OpenRequest{Services: []string{"api"}, Title: "lost bundle"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Resolve(ctx, in.ID, incident.ResolveRequest{Cause: incident.CauseNone}); err != nil {
		t.Fatal(err)
	}
	if d, _ := tr.Get(ctx, in.ID); d.Attributes[attrPostmortemURL] != "" {
		t.Fatalf("attached before any worker ran: %v", d.Attributes)
	}
	if n := o.catchUp(ctx); n != 1 {
		t.Fatalf("catch-up tried %d incidents, want 1", n)
	}
	d, err := tr.Get(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Attributes[attrPostmortemURL], "https://correlator.test/incidents/"+in.ID; got != want {
		t.Errorf("postmortem.url = %q, want %q", got, want)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "pm", "*", "index.md")); len(files) != 1 {
		t.Errorf("bundle files %v, want one", files)
	}
	if n := o.catchUp(ctx); n != 0 {
		t.Errorf("second catch-up tried %d incidents, want none (already attached)", n)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "90d", want: now.Add(-90 * 24 * time.Hour)},
		{in: "-2d", want: now.Add(-48 * time.Hour)},
		{in: "720h", want: now.Add(-720 * time.Hour)},
		{in: "2026-11-01T00:00:00Z", want: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{in: "0d", bad: true},
		{in: "soon", bad: true},
	} {
		got, err := parseSince(tc.in, now)
		if tc.bad != (err != nil) || (!tc.bad && !got.Equal(tc.want)) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
