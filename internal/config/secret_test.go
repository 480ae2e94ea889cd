package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/correlator/correlator/internal/collectors/httpauth"
	"github.com/correlator/correlator/internal/collectors/sentry"
)

const (
	knownToken = "canary-token-0123456789abcdef"
	knownDSN   = "clickhouse://u:canary-dsn-password@db:9000/x"
)

func configWithSecrets() Config {
	c := Default()
	c.ClickHouse.DSN = knownDSN
	c.Auth.Tokens = []Token{{Name: "ci", Token: knownToken, Scopes: []Scope{ScopeIngest}}}
	// Every collector's secrets too.
	c.Changes.GitHub.Secret, c.Changes.GitHub.Token = "canary-gh-secret", "canary-gh-token"
	c.Changes.ArgoCD.Secret = "canary-argo"
	c.Changes.Flags.LaunchDarkly.Secret, c.Changes.Flags.Unleash.Secret = "canary-ld", "canary-unleash"
	c.Changes.Webhooks = map[string]ChangeWebhook{"ci": {Secret: "canary-webhook"}}
	c.Sentry.UserSalt, c.Sentry.WebhookSecret, c.Sentry.API.AuthToken = "canary-salt", "canary-sentry-hook", "canary-sentry-api"
	c.Sentry.Projects = []sentry.Project{{ID: "1", Service: "api", PublicKeys: []sentry.Secret{"canary-dsn-key"}}}
	c.Prometheus.BearerToken = "canary-prom-token"
	c.Prometheus.BasicAuth = &httpauth.BasicAuth{Username: "u", Password: "canary-prom-password"}
	c.Alertmanager.BearerToken = "canary-am-token"
	return c
}

// TestSecretsNeverShown renders a Config holding known secrets every way the
// program might print it and checks the output has "<secret>" instead.
var hexVerb = "%x"

func TestSecretsNeverShown(t *testing.T) {
	c := configWithSecrets()
	render := map[string]func() (string, error){
		"fmt %v":  func() (string, error) { return fmt.Sprintf("%v", c), nil },
		"fmt %+v": func() (string, error) { return fmt.Sprintf("%+v", c), nil },
		"fmt %#v": func() (string, error) { return fmt.Sprintf("%#v", c), nil },
		// A format in a variable: vet and staticcheck reject %x for a
		// struct with bool fields, but the verb must still hide secrets.
		"fmt %x":  func() (string, error) { return fmt.Sprintf(hexVerb, c), nil },
		"fmt ptr": func() (string, error) { return fmt.Sprintf("%+v", &c), nil },
		"json": func() (string, error) {
			// json.Marshal escapes < and > as \u003c and \u003e.
			b, err := json.Marshal(c)
			return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(string(b)), err
		},
		"yaml":     func() (string, error) { b, err := yaml.Marshal(c); return string(b), err },
		"Redacted": func() (string, error) { b, err := c.Redacted(); return string(b), err },
		"slog json": func() (string, error) {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("config loaded", "config", c, "token", c.Auth.Tokens[0].Token)
			return buf.String(), nil
		},
		"slog text": func() (string, error) {
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("config loaded", "config", c, "dsn", c.ClickHouse.DSN)
			return buf.String(), nil
		},
	}
	for name, r := range render {
		t.Run(name, func(t *testing.T) {
			out, err := r()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, canary) {
				t.Fatalf("secret shown:\n%s", out)
			}
			if !strings.Contains(out, redacted) && !strings.Contains(out, fmt.Sprintf("%x", redacted)) {
				t.Errorf("no %s in:\n%s", redacted, out)
			}
		})
	}
}

func TestSecret(t *testing.T) {
	s := Secret(knownToken)
	if s.Reveal() != knownToken {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
	for _, verb := range []string{"%v", "%+v", "%s", "%x", "%X", "%d", "%10s"} {
		if got := fmt.Sprintf(verb, s); got != redacted {
			t.Errorf("Sprintf(%q) = %q, want %q", verb, got, redacted)
		}
	}
	for _, verb := range []string{"%#v", "%q"} {
		if got := fmt.Sprintf(verb, s); got != `"<secret>"` {
			t.Errorf("Sprintf(%q) = %q, want %q", verb, got, `"<secret>"`)
		}
	}

	// An empty secret stays visibly empty.
	var empty Secret
	if got := fmt.Sprintf("%v|%#v|%s", empty, empty, empty.LogValue()); got != `|""|` {
		t.Errorf("empty secret printed %q", got)
	}
	if b, _ := json.Marshal(empty); string(b) != `""` {
		t.Errorf("empty secret JSON = %s", b)
	}
	if b, _ := empty.MarshalText(); len(b) != 0 {
		t.Errorf("empty secret text = %q", b)
	}

	// Decoding reads the value itself.
	var c struct{ S Secret }
	if err := yaml.Unmarshal([]byte("s: "+knownToken), &c); err != nil || c.S.Reveal() != knownToken {
		t.Errorf("yaml decode = %q, %v", c.S.Reveal(), err)
	}
	if err := json.Unmarshal([]byte(`{"S":"`+knownToken+`"}`), &c); err != nil || c.S.Reveal() != knownToken {
		t.Errorf("json decode = %q, %v", c.S.Reveal(), err)
	}
}

// TestRedactedLoadsBack checks check-config's output is a valid config file
// whose placeholders Validate refuses, so it cannot be deployed by mistake.
func TestRedactedLoadsBack(t *testing.T) {
	isolateDefaults(t)
	c := configWithSecrets()
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := decodeStrict(out, &back); err != nil {
		t.Fatalf("decode Redacted output: %v\n%s", err, out)
	}
	if back.Listen != c.Listen || back.Ingest != c.Ingest || back.DataDir != c.DataDir {
		t.Errorf("round trip changed settings:\n%+v\n%+v", back, c)
	}
	err = back.Validate()
	for _, want := range []string{"clickhouse.dsn: is the redacted placeholder", "auth.tokens[0].token: is the redacted placeholder"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "1s", want: time.Second},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "2h", want: 2 * time.Hour},
		{in: "1m30s", want: 90 * time.Second},
		{in: `"1s"`, want: time.Second},
		{in: "1 second", wantErr: `line 1: invalid duration "1 second"`},
		{in: "5", wantErr: `line 1: invalid duration "5"`},
		{in: "[1s]", wantErr: `line 1: invalid duration ""`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v struct{ D Duration }
			err := yaml.Unmarshal([]byte("d: "+tt.in), &v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if time.Duration(v.D) != tt.want {
				t.Errorf("got %s, want %s", v.D, tt.want)
			}

			// Both encodings write what they read.
			y, _ := yaml.Marshal(v)
			j, _ := json.Marshal(v)
			var y2, j2 struct{ D Duration }
			if err := yaml.Unmarshal(y, &y2); err != nil || y2 != v {
				t.Errorf("yaml round trip %s: %v, %v", y, y2, err)
			}
			if err := json.Unmarshal(j, &j2); err != nil || j2 != v {
				t.Errorf("json round trip %s: %v, %v", j, j2, err)
			}
		})
	}
}
