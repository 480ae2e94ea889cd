package prometheus

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// loadConfig decodes a config file strictly, as correlator's config loader
// does, and validates it.
func loadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// TestConfigFiles loads testdata/config: every *.good.yml must validate;
// every *.bad.yml must fail with each message its "# want:" lines name.
func TestConfigFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/config/*.yml")
	if len(files) < 10 {
		t.Fatalf("found %d config files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := loadConfig(f)
			if strings.HasSuffix(f, ".good.yml") {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			src, _ := os.ReadFile(f)
			var wants []string
			for _, line := range strings.Split(string(src), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, w)
				}
			}
			if len(wants) == 0 {
				t.Fatal("bad file without a # want: line")
			}
			if err == nil {
				t.Fatalf("want errors %q, got none", wants)
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestFullConfig(t *testing.T) {
	cfg, err := loadConfig("testdata/config/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, newMemWriter(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.step != 30*time.Second || time.Duration(c.cfg.Backfill) != 24*time.Hour {
		t.Errorf("step %s backfill %s, want 30s and 1d", c.step, c.cfg.Backfill)
	}
	q := c.Queries()
	want := map[string]string{
		"checkout/requests":    `sum by (version, pod) (increase(http_requests_total{app="checkout"}[30s]))`,
		"payments/errors":      `sum by (version, pod) (increase(http_server_requests_seconds_count{application="payments-service",outcome="SERVER_ERROR"}[30s]))`,
		"payments/queue_depth": `max by (version, pod) (max_over_time(queue_depth{service="payments-service"}[30s]))`,
	}
	for k, v := range want {
		if !strings.HasPrefix(q[k], v) {
			t.Errorf("query %s = %q, want it to start with %q", k, q[k], v)
		}
	}
	for _, k := range []string{"checkout/cpu_usage", "payments/cpu_usage"} {
		if _, ok := q[k]; ok {
			t.Errorf("query %s was removed by the config but is still pulled", k)
		}
	}
	if len(q) != 9 { // checkout: 4 defaults; payments: 4 defaults + queue_depth
		t.Errorf("%d queries, want 9: %v", len(q), q)
	}
}

func TestConfigSecretsDoNotPrint(t *testing.T) {
	cfg, err := loadConfig("testdata/config/basic_auth.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(cfg)
	y, _ := yaml.Marshal(cfg)
	for _, out := range []string{string(j), string(y)} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, "secret") {
			t.Errorf("marshalled config shows the password or no <secret>: %s", out)
		}
	}
}
