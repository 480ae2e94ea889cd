package main

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/grafana/grafanatest"
)

// TestServeIncidentOutlets runs an incident's whole loop through `serve`:
// opened over the API, its region annotation in Grafana (a model of
// Grafana's documented annotations API), resolved, the post-mortem bundle
// written and its signed live link recorded on the incident and added to
// the same annotation, in place. The link opens the live page without a
// bearer token; the bare page and a tampered link do not.
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
	link := cur.Attributes["postmortem.url"]
	if !strings.HasPrefix(link, "https://correlator.test/incidents/"+opened.ID+"?") || !strings.Contains(link, "sig=") {
		t.Fatalf("postmortem.url = %q, want the signed live page under external_url", link)
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
		return strings.Contains(text, "/incidents/"+opened.ID+"?") && strings.Contains(text, "resolved")
	})

	// The live page: open with the link, closed without it.
	u, err := url.Parse(link)
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
