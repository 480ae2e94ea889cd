package grafana

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// lockedBuffer is a log sink safe for the Run goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTokenNeverShown drives every failure path that logs or returns an
// error (Grafana answering 401, 500, a proxy page, nothing listening; the
// Run loop's warnings) and every way a Config is printed, and looks for
// the token in all of it.
func TestTokenNeverShown(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var seen []string // every error text

	for _, h := range []http.HandlerFunc{
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Invalid API key","messageId":"api-key.invalid","statusCode":401}`)
		},
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"message":"Failed to save annotation"}`)
		},
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html><body>502 Bad Gateway</body></html>")
		},
	} {
		srv := httptest.NewServer(h)
		s, err := New(Config{URL: srv.URL, Token: testToken, OrgID: 2}, fixture(), Options{Logger: log, Now: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SyncOnce(context.Background()); err == nil {
			t.Error("sync against a failing Grafana succeeded")
		} else {
			seen = append(seen, err.Error(), fmt.Sprintf("%+v", err))
		}
		if err := s.SyncIncident(context.Background(), "inc-1"); err == nil {
			t.Error("incident sync against a failing Grafana succeeded")
		} else {
			seen = append(seen, err.Error())
		}
		// One round of the Run loop, whose warnings go to the log.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "grafana sync failed") && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
		srv.Close()
		// Now nothing listens there: connection refused.
		if _, err := s.SyncOnce(context.Background()); err == nil {
			t.Error("sync against a closed port succeeded")
		} else {
			seen = append(seen, err.Error())
		}
	}
	if !strings.Contains(logs.String(), "grafana sync failed") {
		t.Fatalf("the Run loop logged no failure; logs:\n%s", logs.String())
	}

	// Configs: printed, encoded, and their validation errors.
	cfg := Config{URL: "https://grafana.example.com", Token: testToken}
	y, _ := yaml.Marshal(cfg)
	j, _ := json.Marshal(cfg)
	seen = append(seen, fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.Token), string(y), string(j))
	for _, bad := range []Config{
		{URL: "https://grafana.example.com", Token: testToken, TokenEnv: "X"},
		{URL: "https://user:" + "pw@grafana.example.com", Token: testToken},
		{URL: "ftp://grafana.example.com", Token: testToken},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: valid", bad)
		} else {
			seen = append(seen, err.Error())
		}
	}
	log.Info("config", "grafana", cfg)
	seen = append(seen, logs.String())

	for _, s := range seen {
		if strings.Contains(s, testToken) || strings.Contains(s, "canaryTOKEN") {
			t.Errorf("the token shows in:\n%s", s)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("  "+testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	os.WriteFile(emptyFile, []byte("\n"), 0o600)
	t.Setenv("CORRELATOR_TEST_GRAFANA_TOKEN", testToken)
	const u = "https://grafana.example.com"
	for _, tt := range []struct {
		name    string
		cfg     Config
		wantErr string // a fragment of the error; "" means valid
	}{
		{"disabled", Config{}, ""},
		{"token", Config{URL: u, Token: testToken}, ""},
		{"token file", Config{URL: u, TokenFile: tokenFile}, ""},
		{"token env", Config{URL: u, TokenEnv: "CORRELATOR_TEST_GRAFANA_TOKEN"}, ""},
		{"sub-path and dashboard", Config{URL: u + "/grafana/", Token: "t", DashboardUID: "abc", PanelID: 2, SyncInterval: Duration(30 * time.Second)}, ""},
		{"settings without url", Config{Token: "t"}, "grafana.url: missing"},
		{"no token", Config{URL: u}, "grafana.token: missing"},
		{"two token sources", Config{URL: u, Token: "t", TokenFile: tokenFile}, "mutually exclusive"},
		{"unset env", Config{URL: u, TokenEnv: "CORRELATOR_TEST_GRAFANA_UNSET"}, "grafana.token_env: variable CORRELATOR_TEST_GRAFANA_UNSET is unset"},
		{"missing file", Config{URL: u, TokenFile: filepath.Join(dir, "nope")}, "grafana.token_file:"},
		{"empty file", Config{URL: u, TokenFile: emptyFile}, "is empty"},
		{"redacted token fed back", Config{URL: u, Token: "<secret>"}, "redaction placeholder"},
		{"scheme", Config{URL: "grafana:3000", Token: "t"}, "grafana.url: scheme"},
		{"credentials in url", Config{URL: "https://admin:admin@grafana.example.com", Token: "t"}, "must not carry credentials"},
		{"query in url", Config{URL: u + "?orgId=1", Token: "t"}, "query or fragment"},
		{"panel without dashboard", Config{URL: u, Token: "t", PanelID: 3}, "grafana.panel_id: needs dashboard_uid"},
		{"negative org", Config{URL: u, Token: "t", OrgID: -1}, "grafana.org_id"},
		{"tiny interval", Config{URL: u, Token: "t", SyncInterval: Duration(time.Millisecond)}, "grafana.sync_interval"},
		{"negative lookback", Config{URL: u, Token: "t", Lookback: Duration(-time.Hour)}, "grafana.lookback"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// The YAML section decodes strictly with durations as Go durations, and
// the token resolves from the named variable.
func TestConfigYAML(t *testing.T) {
	const doc = `
url: https://grafana.example.com/grafana
token_env: GF_TOKEN
org_id: 3
dashboard_uid: correlator-service
panel_id: 2
sync_interval: 30s
lookback: 48h
timeout: 5s
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.SyncInterval != Duration(30*time.Second) || c.Lookback != Duration(48*time.Hour) || c.OrgID != 3 || c.PanelID != 2 {
		t.Errorf("decoded %+v", c)
	}
	tok, err := c.token(func(k string) string { return map[string]string{"GF_TOKEN": " tok "}[k] })
	if err != nil || tok != "tok" {
		t.Errorf("token = %q, %v; want tok", tok, err)
	}
	cl, err := newClient(c.withDefaults(), tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cl.timeout != 5*time.Second || cl.dashboardUID != "correlator-service" {
		t.Errorf("client %+v", cl)
	}
	var bad Config
	if err := yaml.Unmarshal([]byte("sync_interval: soon"), &bad); err == nil || !strings.Contains(err.Error(), "invalid duration") {
		t.Errorf("bad duration: %v", err)
	}
}
