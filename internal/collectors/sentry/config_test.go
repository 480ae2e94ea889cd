package sentry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigYAML(t *testing.T) {
	const doc = `
projects:
  - id: "42"
    service: checkout
    public_keys: [e12d836b15bb49d7bbf99e64295d995b]
    sample_rate: 0.1
service_tag: service
customer_tags: [org_id]
user_salt: s3cret-salt
webhook_secret: whsec
api:
  organization: acme
  auth_token: sntrys_abc
  interval: 90s
  backfill: 48h
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.API.Interval != Duration(90*time.Second) || c.API.Backfill != Duration(48*time.Hour) || c.Projects[0].SampleRate != 0.1 ||
		c.Projects[0].PublicKeys[0].Reveal() != testKey || c.API.AuthToken.Reveal() != "sntrys_abc" {
		t.Errorf("decoded %#v", c)
	}
	d := c.withDefaults()
	if d.MaxFrames != DefaultMaxFrames || d.API.URL != DefaultAPIURL || d.API.Overlap != DefaultOverlap || d.CustomerTags[0] != "org_id" {
		t.Errorf("defaults %+v", d)
	}
	// Every way of showing the config hides the secrets.
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "sentry", c, "token", c.API.AuthToken)
	js, _ := json.Marshal(c)
	ym, _ := yaml.Marshal(c)
	for name, out := range map[string]string{
		"fmt %v": fmt.Sprintf("%v", c), "fmt %+v": fmt.Sprintf("%+v", c), "fmt %#v": fmt.Sprintf("%#v", c),
		"fmt %x": fmt.Sprintf("%x", c.API.AuthToken), "json": string(js), "yaml": string(ym), "slog": logged.String(),
	} {
		for _, secret := range []string{"sntrys_abc", "s3cret-salt", "whsec", testKey} {
			if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) {
				t.Errorf("%s shows a secret: %s", name, out)
			}
		}
	}
	if !strings.Contains(string(js), `"auth_token":"\u003csecret\u003e"`) {
		t.Errorf("json: %s", js)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"no projects", func(c *Config) { c.Projects = nil }, []string{"sentry.projects: at least one project"}},
		{"bad ids", func(c *Config) {
			c.Projects = []Project{{ID: "", Service: "a"}, {ID: "abc", Service: "b"}, {ID: "7", Service: "c"}, {ID: "7", Service: "d"}}
		}, []string{"sentry.projects[0].id: required", `sentry.projects[1].id: "abc" is not a numeric project id`, "sentry.projects[3].id: project 7 is already listed as projects[2]"}},
		{"no service", func(c *Config) { c.ServiceTag = ""; c.Projects[1].Service = "" }, []string{"sentry.projects[1].service: required unless service_tag"}},
		{"sample rate", func(c *Config) { c.Projects[0].SampleRate = 1.5 }, []string{"sentry.projects[0].sample_rate: 1.5 is not in (0, 1]"}},
		{"empty key", func(c *Config) { c.Projects[0].PublicKeys = []Secret{" k"} }, []string{"sentry.projects[0].public_keys[0]: empty, padded"}},
		{"no salt", func(c *Config) { c.UserSalt = "" }, []string{"sentry.user_salt: required to hash"}},
		{"redacted salt", func(c *Config) { c.UserSalt = "<secret>" }, []string{"sentry.user_salt: is the redacted placeholder"}},
		{"frames", func(c *Config) { c.MaxFrames = 99 }, []string{"sentry.max_frames: 99 is not in [1, 50]"}},
		{"api url", func(c *Config) { c.API.URL = "sentry.io" }, []string{`sentry.api.url: "sentry.io" is not an http(s) URL`}},
		{"negative duration", func(c *Config) { c.API.Overlap = -1 }, []string{"sentry.api.overlap: negative duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	c := testConfig()
	c.KeepRawUser, c.UserSalt = true, ""
	if err := c.Validate(); err != nil {
		t.Errorf("keep_raw_user without a salt: %v", err)
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := json.Unmarshal([]byte(`"5m"`), &d); err != nil || d != Duration(5*time.Minute) {
		t.Errorf("json: %v %v", d, err)
	}
	if err := json.Unmarshal([]byte(`"5"`), &d); err == nil || !strings.Contains(err.Error(), "invalid duration") {
		t.Errorf("unitless: %v", err)
	}
	if err := yaml.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error("yaml accepted soon")
	}
}
