package config

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The changes section decodes strictly and prints its secrets redacted.
func TestChangesSection(t *testing.T) {
	src := `
github:
  secret: gh-canary-secret
  token: ghp_canary_token
  repositories:
    acme/api: {service: api, environment: production}
  poll_interval: 2m
argocd:
  secret: argo-canary
  applications:
    api-prod: {service: api, image: ghcr.io/acme/api}
flags:
  launchdarkly: {secret: ld-canary, environments: {production: prod}}
  unleash: {secret: unleash-canary}
  services:
  - {prefix: "checkout-", service: checkout}
webhooks:
  jenkins:
    secret: jenkins-canary
    template:
      fields: {service: job.service, version: build.tag}
      static: {environment: production}
merge:
  window: 90m
`
	var c Changes
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.GitHub.Repositories["acme/api"].Service != "api" || time.Duration(c.GitHub.PollInterval) != 2*time.Minute ||
		c.ArgoCD.Applications["api-prod"].Image != "ghcr.io/acme/api" || c.Flags.Services[0].Prefix != "checkout-" ||
		c.Webhooks["jenkins"].Template.Fields["version"] != "build.tag" || time.Duration(c.Merge.Window) != 90*time.Minute ||
		c.Flags.LaunchDarkly.Environments["production"] != "prod" {
		t.Errorf("decoded %+v", c)
	}
	var out bytes.Buffer
	if err := yaml.NewEncoder(&out).Encode(c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), canary) || strings.Count(out.String(), redacted) != 6 {
		t.Errorf("secrets not redacted:\n%s", out.String())
	}

	dec = yaml.NewDecoder(strings.NewReader("github:\n  secrte: x\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&Changes{}); err == nil || !strings.Contains(err.Error(), "field secrte not found in type config.GitHub") {
		t.Errorf("misspelt key: %v", err)
	}
}
