package sentry

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/secret"

	"github.com/correlator/correlator/internal/duration"
)

// Config is the "sentry" section of correlator's configuration. One Config
// serves the three entry points (Intake, Webhook, Poller), so a Sentry
// project maps to the same service, and a user to the same hashed id,
// whichever path an event took.
type Config struct {
	// Projects maps Sentry projects to correlator services and lists the DSN
	// public keys the intake accepts for each. An event of a project not
	// listed is refused by the intake (403) and the webhook (400), and is
	// never pulled.
	Projects []Project `yaml:"projects" json:"projects"`

	// ServiceTag names an event tag whose value, when the event has it,
	// is the service, overriding the project's; for a Sentry project shared
	// by several services. Empty: the project decides.
	ServiceTag string `yaml:"service_tag" json:"service_tag"`

	// ServiceFromServerName uses the event's server_name as the service
	// when neither ServiceTag nor the project gives one.
	ServiceFromServerName bool `yaml:"service_from_server_name" json:"service_from_server_name"`

	// CustomerTags are the tag names, in order of preference, whose value
	// becomes the error's customer id. Default: customer_id, customer,
	// org_id, organization_id, tenant_id, tenant.
	CustomerTags []string `yaml:"customer_tags" json:"customer_tags"`

	// SampleRateTag names an event tag carrying the sender's error sample
	// rate, a number in (0, 1]: Sentry SDKs sample errors client-side
	// (sentry-go's ClientOptions.SampleRate) but do not send the rate, so an
	// application that wants its rate known sets it as a tag. It overrides
	// the project's sample_rate. Empty: not used.
	SampleRateTag string `yaml:"sample_rate_tag" json:"sample_rate_tag"`

	// KeepRawUser stores user ids, emails and IP addresses as sent. By
	// default (false) they are replaced by an HMAC-SHA256 keyed with
	// UserSalt, which still counts distinct users but names none.
	KeepRawUser bool `yaml:"keep_raw_user" json:"keep_raw_user"`

	// UserSalt keys the HMAC of user fields; required unless KeepRawUser.
	// Changing it changes every hashed user id.
	UserSalt Secret `yaml:"user_salt" json:"user_salt"`

	// MaxFrames is how many in-app stack frames, innermost first, are kept
	// in the attribute "sentry.frames" and used by the fingerprint.
	// Default 5.
	MaxFrames int `yaml:"max_frames" json:"max_frames"`

	// MaxBodyBytes limits a request body of the intake and the webhook, both
	// as sent and after decompression. Default 20 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes"`

	// WebhookSecret is the client secret of the Sentry internal integration
	// whose webhooks the Webhook handler receives; it verifies the
	// Sentry-Hook-Signature header. Required to use the webhook.
	WebhookSecret Secret `yaml:"webhook_secret" json:"webhook_secret"`

	// API configures the Poller, which pulls events from Sentry's REST API.
	API APIConfig `yaml:"api" json:"api"`
}

// Project is one Sentry project.
type Project struct {
	// ID is the numeric project id, the last path segment of the DSN
	// (https://KEY@o1.ingest.sentry.io/42 has id 42). Required.
	ID string `yaml:"id" json:"id"`

	// Service is the correlator service of the project's events, unless
	// the config's ServiceTag overrides it.
	Service string `yaml:"service" json:"service"`

	// PublicKeys are the DSN public keys (the user part of the DSN) the
	// intake accepts for this project. Required to use the intake.
	PublicKeys []Secret `yaml:"public_keys" json:"public_keys"`

	// SampleRate is the error sample rate the project's SDKs are configured
	// with (sentry-go ClientOptions.SampleRate), in (0, 1]; impact estimates
	// divide by it. Default 1.
	SampleRate float64 `yaml:"sample_rate" json:"sample_rate"`
}

// APIConfig configures the Poller.
type APIConfig struct {
	// URL is the Sentry server. Default https://sentry.io.
	URL string `yaml:"url" json:"url"`

	// Organization is the organization slug. Required to poll.
	Organization string `yaml:"organization" json:"organization"`

	// AuthToken is a Sentry auth token with the event:read scope.
	// Required to poll.
	AuthToken Secret `yaml:"auth_token" json:"auth_token"`

	// Interval is the time between two polls. Default 1m.
	Interval Duration `yaml:"interval" json:"interval"`

	// Backfill is how far back the first poll of a project reaches when no
	// cursor was saved. Default 24h.
	Backfill Duration `yaml:"backfill" json:"backfill"`

	// Overlap re-reads this much before the cursor on every poll, for
	// events that reach Sentry's search late; ids are deterministic, so the
	// store drops what is read twice. Default 5m.
	Overlap Duration `yaml:"overlap" json:"overlap"`

	// Timeout bounds one HTTP request. Default 30s.
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// Defaults.
const (
	DefaultMaxFrames    = 5
	DefaultMaxBodyBytes = 20 << 20
	DefaultAPIURL       = "https://sentry.io"
	DefaultInterval     = Duration(time.Minute)
	DefaultBackfill     = Duration(24 * time.Hour)
	DefaultOverlap      = Duration(5 * time.Minute)
	DefaultTimeout      = Duration(30 * time.Second)
)

// DefaultCustomerTags are the tags looked up for the customer id when
// Config.CustomerTags is empty.
var DefaultCustomerTags = []string{"customer_id", "customer", "org_id", "organization_id", "tenant_id", "tenant"}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if len(c.CustomerTags) == 0 {
		c.CustomerTags = DefaultCustomerTags
	}
	if c.MaxFrames == 0 {
		c.MaxFrames = DefaultMaxFrames
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.API.URL == "" {
		c.API.URL = DefaultAPIURL
	}
	if c.API.Interval == 0 {
		c.API.Interval = DefaultInterval
	}
	if c.API.Backfill == 0 {
		c.API.Backfill = DefaultBackfill
	}
	if c.API.Overlap == 0 {
		c.API.Overlap = DefaultOverlap
	}
	if c.API.Timeout == 0 {
		c.API.Timeout = DefaultTimeout
	}
	c.Projects = append([]Project(nil), c.Projects...)
	for i := range c.Projects {
		if c.Projects[i].SampleRate == 0 {
			c.Projects[i].SampleRate = 1
		}
	}
	return c
}

// Validate reports every problem of c at once, each naming its field
// (projects[1].id: ...). It checks what all entry points share; the
// constructors add what theirs needs (public keys, webhook secret, API).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("sentry.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.Projects) == 0 {
		bad("projects", "at least one project is required")
	}
	seen := map[string]int{}
	for i, p := range c.Projects {
		f := fmt.Sprintf("projects[%d]", i)
		switch {
		case p.ID == "":
			bad(f+".id", "required (the number at the end of the DSN)")
		case !isDigits(p.ID):
			bad(f+".id", "%q is not a numeric project id", p.ID)
		default:
			if j, dup := seen[p.ID]; dup {
				bad(f+".id", "project %s is already listed as projects[%d]", p.ID, j)
			}
			seen[p.ID] = i
		}
		if p.Service == "" && c.ServiceTag == "" && !c.ServiceFromServerName {
			bad(f+".service", "required unless service_tag or service_from_server_name is set")
		}
		if len(p.Service) > maxIdent {
			bad(f+".service", "longer than %d bytes", maxIdent)
		}
		if p.SampleRate <= 0 || p.SampleRate > 1 {
			bad(f+".sample_rate", "%v is not in (0, 1]", p.SampleRate)
		}
		for k, key := range p.PublicKeys {
			if key == "" || strings.TrimSpace(key.Reveal()) != key.Reveal() || key.Reveal() == redacted {
				bad(fmt.Sprintf("%s.public_keys[%d]", f, k), "empty, padded with spaces or redacted")
			}
		}
	}
	if !c.KeepRawUser && c.UserSalt == "" {
		bad("user_salt", "required to hash user ids, emails and IP addresses (or set keep_raw_user: true)")
	}
	if c.UserSalt.Reveal() == redacted {
		bad("user_salt", "is the redacted placeholder %q", redacted)
	}
	if c.MaxFrames < 0 || c.MaxFrames > 50 {
		bad("max_frames", "%d is not in [1, 50]", c.MaxFrames)
	}
	if c.MaxBodyBytes < 1024 {
		bad("max_body_bytes", "%d is below 1024", c.MaxBodyBytes)
	}
	if u, err := url.Parse(c.API.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("api.url", "%q is not an http(s) URL", c.API.URL)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"interval", c.API.Interval}, {"backfill", c.API.Backfill}, {"overlap", c.API.Overlap}, {"timeout", c.API.Timeout}} {
		if d.v < 0 {
			bad("api."+d.name, "negative duration %s", d.v)
		}
	}
	return errors.Join(errs...)
}

// validateAPI checks what the Poller needs beyond Validate.
func (c Config) validateAPI() error {
	var errs []error
	if c.API.Organization == "" {
		errs = append(errs, errors.New("sentry.api.organization: required to poll Sentry's API"))
	} else if strings.ContainsAny(c.API.Organization, "/?#% ") {
		errs = append(errs, fmt.Errorf("sentry.api.organization: %q is not a slug", c.API.Organization))
	}
	if c.API.AuthToken == "" || c.API.AuthToken.Reveal() == redacted {
		errs = append(errs, errors.New("sentry.api.auth_token: required to poll Sentry's API"))
	}
	return errors.Join(errs...)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Secret is a string that must not be shown; see package secret.
type Secret = secret.Secret

const redacted = secret.Redacted

// Duration is a time.Duration written as a Go duration string; see
// package duration.
type Duration = duration.Duration
