// Package github collects deploys from GitHub: a webhook receiver for
// deployment_status (and, if asked, release) events, and a poller over the
// REST API's deployments for backfill and for installations that cannot
// receive webhooks. Both derive the same change ids, so a deploy seen by
// both is one change.
//
// # Configuration
//
// The section sits under changes: in correlator's configuration file
// (config.Changes):
//
//	github:
//	  secret: ...                 # the webhook's secret (required for the webhook)
//	  token: ...                  # a token that may read deployments (required for the poller)
//	  api_url: https://api.github.com   # GitHub Enterprise: https://HOST/api/v3
//	  repositories:
//	    acme/api: {service: api, environment: production}
//	    acme/web: {service: web}  # every environment, under its GitHub name
//	  unknown_repositories: ignore   # or reject
//	  version: auto               # auto, ref or sha
//	  releases: skip              # or deploy
//	  poll_interval: 5m
//	  backfill: 24h
//
// A repository's environment, when set, is the only GitHub environment
// whose deployments are recorded; empty records every environment under
// its GitHub name, lower-cased. Events of repositories not listed are
// acknowledged (202) and dropped, or with unknown_repositories: reject
// refused with 422 so that GitHub shows the delivery as failed.
//
// # What becomes a change
//
// A deployment_status event whose state is success becomes a deploy:
// the time of the status, the service of the repository, the deployment's
// environment, its version (below), its commit (the deployment's sha), its
// creator's login as the author, the status's log or target URL, source
// "github", and the attributes github.deployment_id, github.repository and
// status=succeeded. failure and error states are recorded too, with
// status=failed: a deploy that failed half-way changed production as much
// as one that succeeded, and a failed deploy of a version that never ran
// is harmless to list (the engine finds no evidence for it). pending,
// queued, in_progress and inactive states are acknowledged and dropped.
//
// The version is, with version: ref, the deployment's ref; with sha, its
// sha; with auto (the default), the ref when it looks like a version (it
// starts with a digit, or a "v" and a digit: a tag such as v1.4.2) and the
// sha otherwise: a branch name such as main says nothing about what runs.
//
// A release is not a deploy: publishing v1.4.2 says a version exists, not
// that it runs anywhere, and services that deploy on release are seen
// deploying by their deployments, Argo CD or `correlator mark`. So
// release events are dropped unless releases: deploy, which records each
// published release as a deploy of its tag, for teams whose release is
// their deploy (the environment is the repository's, which should then be
// set).
//
// # Why no go-github
//
// The collector reads about twenty fields of two webhook events and two
// REST endpoints. github.com/google/go-github is well kept, but it would
// add a large module that changes its import path with every major
// version (several a year) for those structs, and its client returns
// rate-limit errors rather than waiting them out and pages by page number,
// so the polling loop, rate-limit waits and Link-header pagination would
// still be ours. Signature checking is ten lines of crypto/hmac. So the
// payloads are the small structs below, tested against GitHub's documented
// examples.
package github

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/event"
)

// Source is the source name of GitHub's changes.
const Source = "github"

// Config configures the GitHub collector (see the package documentation).
type Config = config.GitHub

// Repository maps one repository to a service.
type Repository = config.GitHubRepository

// settings is a checked Config with its defaults filled in.
type settings struct{ Config }

// Defaults.
const (
	DefaultAPIURL       = "https://api.github.com"
	DefaultPollInterval = 5 * time.Minute
	DefaultBackfill     = 24 * time.Hour
)

// newSettings fills the defaults and checks the configuration.
func newSettings(cfg Config) (settings, error) {
	c := settings{cfg}
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	if c.UnknownRepositories == "" {
		c.UnknownRepositories = "ignore"
	}
	if c.Version == "" {
		c.Version = "auto"
	}
	if c.Releases == "" {
		c.Releases = "skip"
	}
	if c.PollInterval <= 0 {
		c.PollInterval = config.Duration(DefaultPollInterval)
	}
	if c.Backfill <= 0 {
		c.Backfill = config.Duration(DefaultBackfill)
	}
	var errs []error
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("github.api_url: %q is not an http(s) URL", c.APIURL))
	}
	if c.UnknownRepositories != "ignore" && c.UnknownRepositories != "reject" {
		errs = append(errs, fmt.Errorf("github.unknown_repositories: %q (want ignore or reject)", c.UnknownRepositories))
	}
	if c.Version != "auto" && c.Version != "ref" && c.Version != "sha" {
		errs = append(errs, fmt.Errorf("github.version: %q (want auto, ref or sha)", c.Version))
	}
	if c.Releases != "skip" && c.Releases != "deploy" {
		errs = append(errs, fmt.Errorf("github.releases: %q (want skip or deploy)", c.Releases))
	}
	repos := make(map[string]Repository, len(c.Repositories))
	for name, r := range c.Repositories {
		if owner, repo, ok := strings.Cut(name, "/"); !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
			errs = append(errs, fmt.Errorf("github.repositories: %q is not owner/name", name))
		}
		if r.Service == "" {
			errs = append(errs, fmt.Errorf("github.repositories.%s.service: missing", name))
		}
		repos[strings.ToLower(name)] = r
	}
	c.Repositories = repos
	return c, errors.Join(errs...)
}

// repository returns the mapping of a repository by full name.
func (c *settings) repository(fullName string) (Repository, bool) {
	r, ok := c.Repositories[strings.ToLower(fullName)]
	return r, ok
}

// environment returns the environment recorded for a deployment to the
// GitHub environment env, or false if the repository's deployments there
// are not recorded.
func recordedEnvironment(r Repository, env string) (string, bool) {
	env = strings.ToLower(strings.TrimSpace(env))
	if r.Environment == "" {
		return env, true
	}
	want := strings.ToLower(strings.TrimSpace(r.Environment))
	return want, env == want
}

// The payload structs hold what the collector reads of GitHub's objects.

type user struct {
	Login string `json:"login"`
}

type repository struct {
	FullName string `json:"full_name"`
	HTMLURL  string `json:"html_url"`
}

type deployment struct {
	ID          int64     `json:"id"`
	SHA         string    `json:"sha"`
	Ref         string    `json:"ref"`
	Task        string    `json:"task"`
	Environment string    `json:"environment"`
	Description string    `json:"description"`
	Creator     *user     `json:"creator"`
	CreatedAt   time.Time `json:"created_at"`
}

type deploymentStatus struct {
	ID          int64     `json:"id"`
	State       string    `json:"state"`
	Description string    `json:"description"`
	Environment string    `json:"environment"`
	TargetURL   string    `json:"target_url"`
	LogURL      string    `json:"log_url"`
	Creator     *user     `json:"creator"`
	CreatedAt   time.Time `json:"created_at"`
}

type release struct {
	ID              int64     `json:"id"`
	TagName         string    `json:"tag_name"`
	TargetCommitish string    `json:"target_commitish"`
	Name            string    `json:"name"`
	Draft           bool      `json:"draft"`
	Prerelease      bool      `json:"prerelease"`
	HTMLURL         string    `json:"html_url"`
	Author          *user     `json:"author"`
	CreatedAt       time.Time `json:"created_at"`
	PublishedAt     time.Time `json:"published_at"`
}

func (u *user) login() string {
	if u == nil {
		return ""
	}
	return u.Login
}

// looksLikeVersion reports whether a ref names a version: it starts with a
// digit, or with "v" and a digit.
func looksLikeVersion(ref string) bool {
	ref = strings.TrimPrefix(ref, "refs/tags/")
	if ref == "" {
		return false
	}
	if ref[0] == 'v' || ref[0] == 'V' {
		ref = ref[1:]
	}
	return ref != "" && ref[0] >= '0' && ref[0] <= '9'
}

// version picks the version of a deployment.
func (c *settings) version(d deployment) string {
	switch c.Version {
	case "ref":
		if d.Ref != "" {
			return strings.TrimPrefix(d.Ref, "refs/tags/")
		}
	case "auto":
		if looksLikeVersion(d.Ref) {
			return strings.TrimPrefix(d.Ref, "refs/tags/")
		}
	}
	return d.SHA
}

// terminal maps a deployment status state to the status attribute, or
// false for states that are not an outcome.
func terminal(state string) (string, bool) {
	switch strings.ToLower(state) {
	case "success":
		return changes.StatusSucceeded, true
	case "failure", "error":
		return changes.StatusFailed, true
	}
	return "", false
}

// deployChange builds the change of a deployment's terminal status. ok is
// false when it is not recorded (not terminal, or another environment).
func (c *settings) deployChange(repo string, r Repository, d deployment, s deploymentStatus) (event.Change, bool) {
	status, ok := terminal(s.State)
	if !ok {
		return event.Change{}, false
	}
	ghEnv := d.Environment
	if ghEnv == "" {
		ghEnv = s.Environment
	}
	env, ok := recordedEnvironment(r, ghEnv)
	if !ok {
		return event.Change{}, false
	}
	author := d.Creator.login()
	if author == "" {
		author = s.Creator.login()
	}
	u := s.LogURL
	if u == "" {
		u = s.TargetURL
	}
	if u == "" {
		u = c.htmlURL() + "/" + repo + "/deployments"
	}
	version := c.version(d)
	title := d.Description
	if title == "" {
		title = fmt.Sprintf("Deploy %s to %s", shortVersion(version), ghEnv)
	}
	if status == changes.StatusFailed {
		title = "Failed: " + title
		if s.Description != "" {
			title += " (" + s.Description + ")"
		}
	}
	t := s.CreatedAt
	if t.IsZero() {
		t = d.CreatedAt
	}
	ch := event.Change{
		Time: t.UTC(), Kind: event.ChangeDeploy, Service: r.Service, Environment: env,
		Version: version, Commit: d.SHA, Author: author, Title: title, URL: u, Source: Source,
		Attributes: map[string]string{
			"github.repository":    repo,
			"github.deployment_id": fmt.Sprint(d.ID),
			changes.StatusAttr:     status,
		},
	}
	if !d.CreatedAt.IsZero() {
		ch.Attributes["github.deployment_created_at"] = d.CreatedAt.UTC().Format(time.RFC3339)
	}
	changes.AssignID(&ch)
	return ch, true
}

// releaseChange builds the deploy of a published release.
func (c *settings) releaseChange(repo string, r Repository, rel release) (event.Change, bool) {
	if rel.Draft || rel.TagName == "" {
		return event.Change{}, false
	}
	t := rel.PublishedAt
	if t.IsZero() {
		t = rel.CreatedAt
	}
	commit := ""
	if changes.IsCommit(rel.TargetCommitish) {
		commit = rel.TargetCommitish
	}
	title := rel.Name
	if title == "" {
		title = "Release " + rel.TagName
	}
	ch := event.Change{
		Time: t.UTC(), Kind: event.ChangeDeploy, Service: r.Service, Environment: strings.ToLower(r.Environment),
		Version: rel.TagName, Commit: commit, Author: rel.Author.login(), Title: title, URL: rel.HTMLURL, Source: Source,
		Attributes: map[string]string{"github.repository": repo, "github.release_id": fmt.Sprint(rel.ID), changes.StatusAttr: changes.StatusSucceeded},
	}
	if rel.Prerelease {
		ch.Attributes["github.prerelease"] = "true"
	}
	changes.AssignID(&ch)
	return ch, true
}

// htmlURL is the web address of the GitHub the API belongs to:
// https://github.com for api.github.com, https://HOST for an Enterprise
// server's https://HOST/api/v3.
func (c *settings) htmlURL() string {
	if c.APIURL == DefaultAPIURL {
		return "https://github.com"
	}
	return strings.TrimSuffix(c.APIURL, "/api/v3")
}

func shortVersion(v string) string {
	if changes.IsCommit(v) && len(v) > 7 {
		return v[:7]
	}
	return v
}
