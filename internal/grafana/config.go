package grafana

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/secret"

	"github.com/correlator/correlator/internal/duration"
)

// Secret is a string that must not be shown; see package secret.
type Secret = secret.Secret

// Defaults applied by Config.withDefaults to zero fields.
const (
	DefaultSyncInterval = Duration(time.Minute)
	DefaultLookback     = Duration(24 * time.Hour)
	DefaultTimeout      = Duration(10 * time.Second)
)

// Config configures the Grafana overlay: the "grafana" section of
// correlator's config file. The overlay is off while URL is empty.
//
// The token is a Grafana service account token with the Editor role (or
// the annotations:write and annotations:read permissions, and dashboards:read
// when DashboardUID is set). Set it with exactly one of token, token_file or
// token_env.
type Config struct {
	// URL is Grafana's address, with its sub-path if it is served under
	// one: https://grafana.example.com or http://grafana:3000/grafana. It
	// must not carry credentials.
	URL string `yaml:"url" json:"url"`
	// Token is the service account token, sent as "Authorization: Bearer".
	Token Secret `yaml:"token,omitempty" json:"token,omitempty"`
	// TokenFile is a file holding the token (surrounding white space
	// trimmed), read at start-up.
	TokenFile string `yaml:"token_file,omitempty" json:"token_file,omitempty"`
	// TokenEnv names an environment variable holding the token, read at
	// start-up: GRAFANA_TOKEN keeps the token out of the config file.
	TokenEnv string `yaml:"token_env,omitempty" json:"token_env,omitempty"`
	// OrgID, when set, is sent as the X-Grafana-Org-Id header. A service
	// account belongs to one organisation, so this only needs setting for
	// a token that can reach several; 0 means the token's own.
	OrgID int64 `yaml:"org_id,omitempty" json:"org_id,omitempty"`
	// DashboardUID scopes the annotations to one dashboard (and PanelID to
	// one of its panels); empty makes them organisation annotations, which
	// any dashboard shows through a Grafana annotation query on the tags
	// "correlator", "change" or "incident", "service:NAME".
	DashboardUID string `yaml:"dashboard_uid,omitempty" json:"dashboard_uid,omitempty"`
	// PanelID scopes the annotations to one panel of DashboardUID; 0 means
	// every panel of the dashboard. Requires DashboardUID.
	PanelID int64 `yaml:"panel_id,omitempty" json:"panel_id,omitempty"`
	// SyncInterval is how often the store is mirrored to Grafana; default
	// 1m. After a failed sync the next waits longer, up to 10 intervals.
	SyncInterval Duration `yaml:"sync_interval,omitempty" json:"sync_interval,omitempty"`
	// Lookback is how far back changes and resolved incidents are
	// annotated; default 24h. Open incidents are annotated however old.
	Lookback Duration `yaml:"lookback,omitempty" json:"lookback,omitempty"`
	// Timeout bounds each request to Grafana; default 10s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Enabled reports whether the overlay is configured.
func (c Config) Enabled() bool { return c.URL != "" }

func (c Config) withDefaults() Config {
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.Lookback == 0 {
		c.Lookback = DefaultLookback
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports every problem of an enabled configuration at once, each
// naming its field under "grafana". It reads token_file and token_env to
// check they hold a token, and never shows the token.
func (c Config) Validate() error { return c.validate(os.Getenv) }

// validate is Validate reading the environment through getenv.
func (c Config) validate(getenv func(string) string) error {
	if !c.Enabled() {
		if c.Token != "" || c.TokenFile != "" || c.TokenEnv != "" || c.DashboardUID != "" {
			return errors.New("grafana.url: missing (the other grafana settings need it)")
		}
		return nil
	}
	var errs []error
	if _, err := c.endpoint(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.token(getenv); err != nil {
		errs = append(errs, err)
	}
	if c.OrgID < 0 {
		errs = append(errs, fmt.Errorf("grafana.org_id: %d is negative", c.OrgID))
	}
	if c.PanelID < 0 {
		errs = append(errs, fmt.Errorf("grafana.panel_id: %d is negative", c.PanelID))
	}
	if c.PanelID != 0 && c.DashboardUID == "" {
		errs = append(errs, errors.New("grafana.panel_id: needs dashboard_uid"))
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"sync_interval", c.SyncInterval}, {"lookback", c.Lookback}, {"timeout", c.Timeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("grafana.%s: %s is negative", d.name, d.v))
		}
	}
	if c.SyncInterval > 0 && c.SyncInterval < Duration(time.Second) {
		errs = append(errs, fmt.Errorf("grafana.sync_interval: %s is below 1s", c.SyncInterval))
	}
	return errors.Join(errs...)
}

// endpoint splits URL into what the client wants: scheme, host and the
// API's base path.
func (c Config) endpoint() (*url.URL, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		// url.Parse quotes the input; it has no credentials we could leak
		// beyond what the user typed in the same field, but say less.
		return nil, errors.New("grafana.url: not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("grafana.url: scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("grafana.url: no host")
	}
	if u.User != nil {
		return nil, errors.New("grafana.url: must not carry credentials; use token, token_file or token_env")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("grafana.url: must not have a query or fragment")
	}
	return u, nil
}

// token resolves the token from its one source. Errors name the field and
// the file or variable, never the value.
func (c Config) token(getenv func(string) string) (string, error) {
	n := 0
	for _, set := range []bool{c.Token != "", c.TokenFile != "", c.TokenEnv != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return "", errors.New("grafana.token: missing (set token, token_file or token_env)")
	case n > 1:
		return "", errors.New("grafana.token: token, token_file and token_env are mutually exclusive")
	case c.TokenFile != "":
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", fmt.Errorf("grafana.token_file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("grafana.token_file: %s is empty", c.TokenFile)
		}
		return t, nil
	case c.TokenEnv != "":
		t := strings.TrimSpace(getenv(c.TokenEnv))
		if t == "" {
			return "", fmt.Errorf("grafana.token_env: variable %s is unset or empty", c.TokenEnv)
		}
		return t, nil
	}
	if c.Token.Reveal() == secret.Redacted {
		return "", errors.New("grafana.token: holds the redaction placeholder, not a token")
	}
	return c.Token.Reveal(), nil
}

// Duration is a time.Duration written as a Go duration string; see
// package duration.
type Duration = duration.Duration
