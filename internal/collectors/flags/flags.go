// Package flags records feature flag changes from LaunchDarkly and Unleash
// webhooks as changes of kind flag, with the attributes the engine reads:
//
//	flag: the flag's key
//	old:  its state before: "on", "off" or a rollout percentage ("10%")
//	new:  its state after
//
// # Configuration
//
// The section sits under changes: in correlator's configuration file
// (config.Changes):
//
//	flags:
//	  launchdarkly:
//	    secret: ...              # the webhook's signing secret; when set, X-LD-Signature must match
//	    environments: {production: production}   # LaunchDarkly environment key → correlator environment (default: the key)
//	    site_url: https://app.launchdarkly.com
//	  unleash:
//	    secret: ...              # when set, the Authorization header must equal it (the addon's "Authorization header" field)
//	    environments: {}
//	    site_url: https://unleash.example.com   # for links to the flag
//	  services:                  # which service a flag belongs to; first match wins
//	  - {prefix: "checkout-", service: checkout}
//	  - {project: payments, service: payments}
//	  - {tag: team-search, service: search}
//	  service_tag: service       # a tag "service:NAME" (LaunchDarkly) or of type "service" (Unleash) names it
//	  default_service: ""        # empty: flags that match nothing are dropped
//
// A flag's service is found by, in order: the first rule of services
// whose every given condition holds (prefix of the flag key, project key,
// tag; tags are LaunchDarkly's tags and Unleash's tag values, or
// "type:value"); a tag naming the service (service_tag); the default
// service. A flag that maps to no service is acknowledged (202) and
// dropped: a flag change the engine cannot tie to a service is noise.
//
// # LaunchDarkly
//
// Add a webhook integration pointing at /collect/launchdarkly, signed
// (so its secret goes to flags.launchdarkly.secret), with a policy
// limited to flags if you like. Its payload is an audit log entry; entries
// of kind flag are read, for each environment their accesses name
// ("proj/P:env/E:flag/K") with an action that changes what the flag serves
// (updateOn, updateFallthrough, updateOffVariation, updateRules,
// updateTargets, updatePrerequisites, the measured-rollout actions, ...).
// The states come from previousVersion and currentVersion: "off" when
// the flag is off in the environment; when on, what its default rule
// (fallthrough) serves: a fixed variation is "on", unless it is the off
// variation (false for a boolean flag), and a percentage rollout is the
// share of traffic given a variation other than the off one ("10%").
// Targeting rules and individual targets are not reflected in the state
// (the actions attribute says they changed). A flag created off, or an
// access whose state did not change and that only touched names,
// descriptions or tags, records nothing. The id derives from the entry's
// _id and the environment, so LaunchDarkly's retry of a delivery is one
// change.
//
// # Unleash
//
// Add a webhook addon pointing at /collect/unleash with the events
// feature-environment-enabled, feature-environment-disabled,
// feature-strategy-add, feature-strategy-update, feature-strategy-remove
// (and feature-updated for Unleash before 4.3), no body template, and an
// Authorization header value if flags.unleash.secret is set. Enabling a
// flag in an environment is "off" → "on", disabling "on" → "off"; a
// strategy's change is its rollout: a flexibleRollout strategy's rollout
// parameter ("25" → "25%"), the default strategy "on"; a removed strategy
// leaves the new state unknown (empty) since other strategies may still
// serve it. Other events are acknowledged and dropped. The id derives
// from the event's id.
package flags

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/correlator/correlator/internal/config"
)

// Config configures the flag collectors (see the package documentation).
type Config = config.Flags

// Provider configures one flag provider's webhook.
type Provider = config.FlagProvider

// Rule maps flags to a service. Every condition given must hold.
type Rule = config.FlagRule

// DefaultServiceTag is the tag naming a flag's service.
const DefaultServiceTag = "service"

func withDefaults(c Config) (Config, error) {
	if c.ServiceTag == "" {
		c.ServiceTag = DefaultServiceTag
	}
	if c.LaunchDarkly.SiteURL == "" {
		c.LaunchDarkly.SiteURL = "https://app.launchdarkly.com"
	}
	c.LaunchDarkly.SiteURL = strings.TrimRight(c.LaunchDarkly.SiteURL, "/")
	c.Unleash.SiteURL = strings.TrimRight(c.Unleash.SiteURL, "/")
	var errs []error
	for i, r := range c.Services {
		if r.Service == "" {
			errs = append(errs, fmt.Errorf("flags.services[%d].service: missing", i))
		}
		if r.Prefix == "" && r.Project == "" && r.Tag == "" {
			errs = append(errs, fmt.Errorf("flags.services[%d]: give a prefix, a project or a tag", i))
		}
	}
	return c, errors.Join(errs...)
}

// flagInfo is what the service mapping looks at.
type flagInfo struct {
	key     string
	project string
	tags    []string // LaunchDarkly tags; Unleash "value" and "type:value"
}

// service maps a flag to its service, or "".
func service(c *Config, f flagInfo) string {
	for _, r := range c.Services {
		if r.Prefix != "" && !strings.HasPrefix(f.key, r.Prefix) {
			continue
		}
		if r.Project != "" && !strings.EqualFold(r.Project, f.project) {
			continue
		}
		if r.Tag != "" && !slices.Contains(f.tags, r.Tag) {
			continue
		}
		return r.Service
	}
	for _, t := range f.tags {
		if name, ok := strings.CutPrefix(t, c.ServiceTag+":"); ok && name != "" {
			return name
		}
	}
	return c.DefaultService
}

// environment maps a provider's environment key.
func environment(p *Provider, key string) string {
	if e, ok := p.Environments[key]; ok {
		return e
	}
	return strings.ToLower(key)
}
