package postmortem

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/correlator/correlator/internal/secret"
)

// AttachConfig says where a resolved incident's bundle goes: a directory,
// a webhook, or both. YAML keys in snake_case; secrets print as <secret>.
type AttachConfig struct {
	// Dir receives DIR/<incident>/index.{md,html,json} and the charts.
	// With a webhook it also keeps the payloads not yet delivered, so
	// that none is lost across restarts.
	Dir string `yaml:"dir" json:"dir"`
	// WebhookURL receives a POST of the bundle as JSON (see Payload).
	WebhookURL string `yaml:"webhook_url" json:"webhook_url"`
	// WebhookHeaders are sent with every POST (Authorization, ...).
	WebhookHeaders map[string]secret.Secret `yaml:"webhook_headers" json:"webhook_headers"`
	// WebhookSecret, when set, signs each body: the header
	// X-Correlator-Signature-256 is "sha256=" and the hex HMAC-SHA256 of
	// the body, as GitHub signs its webhooks.
	WebhookSecret secret.Secret `yaml:"webhook_secret" json:"webhook_secret"`
	// Attempts is how many times a POST is tried before it is left for
	// RetryPending; default 5. Backoff is the wait after the first
	// failure, doubled after each (at most MaxBackoff); defaults 1s, 1m.
	// Timeout bounds each attempt; default 30s.
	Attempts   int      `yaml:"attempts" json:"attempts"`
	Backoff    Duration `yaml:"backoff" json:"backoff"`
	MaxBackoff Duration `yaml:"max_backoff" json:"max_backoff"`
	Timeout    Duration `yaml:"timeout" json:"timeout"`
	// PublicURL is correlator's address as people reach it
	// (https://correlator.example.com): the bundle's API links point
	// there. Set from the top-level external_url, not from this section.
	PublicURL string `yaml:"-" json:"-"`
	// LiveLink, when set, is the address of an incident's live page (a
	// signed link, see package livelink); without it the page link is
	// PublicURL/incidents/ID.
	LiveLink func(id string, opened time.Time) string `yaml:"-" json:"-"`
}

// Environment variables AttachConfig.ApplyEnv reads, so that secrets need
// not be in the file.
const (
	EnvWebhookURL    = "CORRELATOR_POSTMORTEM_WEBHOOK_URL"
	EnvWebhookSecret = "CORRELATOR_POSTMORTEM_WEBHOOK_SECRET"
	// EnvWebhookAuthorization is sent as the Authorization header.
	EnvWebhookAuthorization = "CORRELATOR_POSTMORTEM_WEBHOOK_AUTHORIZATION"
)

// ApplyEnv overrides the configuration from the environment.
func (c *AttachConfig) ApplyEnv(getenv func(string) string) {
	if v := getenv(EnvWebhookURL); v != "" {
		c.WebhookURL = v
	}
	if v := getenv(EnvWebhookSecret); v != "" {
		c.WebhookSecret = secret.Secret(v)
	}
	if v := getenv(EnvWebhookAuthorization); v != "" {
		if c.WebhookHeaders == nil {
			c.WebhookHeaders = map[string]secret.Secret{}
		}
		c.WebhookHeaders["Authorization"] = secret.Secret(v)
	}
}

var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Validate checks the configuration, naming the field at fault.
func (c AttachConfig) Validate() error {
	var errs []error
	for name, raw := range map[string]string{"webhook_url": c.WebhookURL} {
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("postmortem.%s: want an http(s) URL", name))
		}
	}
	for h := range c.WebhookHeaders {
		if !headerNameRE.MatchString(h) {
			errs = append(errs, fmt.Errorf("postmortem.webhook_headers: %q is not a header name", h))
		}
	}
	if c.Attempts < 0 {
		errs = append(errs, fmt.Errorf("postmortem.attempts: negative (%d)", c.Attempts))
	}
	if c.Backoff < 0 || c.MaxBackoff < 0 || c.Timeout < 0 {
		errs = append(errs, errors.New("postmortem.backoff, max_backoff, timeout: negative"))
	}
	if c.Dir == "" && c.WebhookURL == "" && (c.WebhookSecret != "" || len(c.WebhookHeaders) > 0) {
		errs = append(errs, errors.New("postmortem.webhook_url: webhook headers or secret set without a URL"))
	}
	return errors.Join(errs...)
}

func (c AttachConfig) withDefaults() AttachConfig {
	if c.Attempts == 0 {
		c.Attempts = 5
	}
	if c.Backoff == 0 {
		c.Backoff = Duration(time.Second)
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = Duration(time.Minute)
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(30 * time.Second)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return c
}

// Payload is the body POSTed to the webhook: the bundle as data, the
// Markdown and HTML documents, and links to the live versions.
type Payload struct {
	IncidentID string `json:"incident_id"`
	Title      string `json:"title"`
	Summary    string `json:"summary"`
	// Location is where the bundle was written or can be read.
	Location string            `json:"location,omitempty"`
	Links    map[string]string `json:"links,omitempty"`
	Markdown string            `json:"markdown"`
	HTML     string            `json:"html"`
	Bundle   *Bundle           `json:"bundle"`
}

// Attacher writes or posts the bundle of each resolved incident.
type Attacher struct {
	b      *Builder
	cfg    AttachConfig
	client *http.Client
	log    *slog.Logger
	// sleep waits between attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error

	// mu guards pending: payloads not delivered, kept in memory when
	// there is no Dir to keep them in.
	mu      sync.Mutex
	pending map[string][]byte
}

// NewAttacher returns an Attacher; cfg must have passed Validate. A nil
// client means http.DefaultClient.
func NewAttacher(b *Builder, cfg AttachConfig, client *http.Client, log *slog.Logger) *Attacher {
	if client == nil {
		client = http.DefaultClient
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Attacher{b: b, cfg: cfg.withDefaults(), client: client, log: log.With("component", "postmortem"),
		sleep: sleepCtx, pending: map[string][]byte{}}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pendingName marks, in an incident's directory, a payload not delivered.
const pendingName = "webhook-payload.pending.json"

// OnResolve builds the bundle of the resolved incident id, writes it to
// the directory and posts it to the webhook (each when configured), and
// returns where it is: the URL the webhook answered with (a Location
// header, or a JSON body's "url"), else the public live page, else the
// written index.html. When the webhook fails after every attempt the
// error says so, the bundle is still on disk and the payload is kept for
// RetryPending; the location returned is then the local one.
func (a *Attacher) OnResolve(ctx context.Context, id string) (string, error) {
	bd, err := a.b.Build(ctx, id)
	if err != nil {
		return "", err
	}
	location := a.pageURL(bd.Incident)
	dir := ""
	if a.cfg.Dir != "" {
		dir = filepath.Join(a.cfg.Dir, dirName(id))
		paths, err := WriteDir(dir, bd, FormatMarkdown, FormatJSON, FormatHTML)
		if err != nil {
			return "", fmt.Errorf("write bundle of %s: %w", id, err)
		}
		if location == "" {
			location = paths[2] // index.html
		}
		a.log.Info("post-mortem bundle written", "incident_id", id, "dir", dir)
	}
	if a.cfg.WebhookURL == "" {
		return location, nil
	}
	body, err := a.payload(bd, location)
	if err != nil {
		return location, err
	}
	// Keep the payload before the first attempt: a crash mid-retry loses
	// nothing.
	if err := a.keep(id, dir, body); err != nil {
		return location, err
	}
	remote, err := a.post(ctx, body)
	if err != nil {
		return location, fmt.Errorf("post bundle of %s to the webhook (kept for a later retry): %w", id, err)
	}
	a.delivered(id, dir)
	a.log.Info("post-mortem bundle posted", "incident_id", id)
	if remote != "" {
		location = remote
	}
	return location, nil
}

// RetryPending posts again every payload that was not delivered, and
// returns how many are still pending. Call it periodically.
func (a *Attacher) RetryPending(ctx context.Context) (int, error) {
	if a.cfg.WebhookURL == "" {
		return 0, nil
	}
	type item struct {
		id, dir string
		body    []byte
	}
	var items []item
	a.mu.Lock()
	for id, body := range a.pending {
		items = append(items, item{id: id, body: body})
	}
	a.mu.Unlock()
	if a.cfg.Dir != "" {
		files, err := filepath.Glob(filepath.Join(a.cfg.Dir, "*", pendingName))
		if err != nil {
			return 0, err
		}
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				return 0, fmt.Errorf("read pending payload: %w", err)
			}
			items = append(items, item{id: filepath.Base(filepath.Dir(f)), dir: filepath.Dir(f), body: body})
		}
	}
	left := 0
	var errs []error
	for _, it := range items {
		if _, err := a.post(ctx, it.body); err != nil {
			left++
			errs = append(errs, err)
			continue
		}
		a.delivered(it.id, it.dir)
	}
	return left, errors.Join(errs...)
}

func (a *Attacher) payload(bd *Bundle, location string) ([]byte, error) {
	var md, page bytes.Buffer
	if err := Markdown(&md, bd, RenderOptions{}); err != nil {
		return nil, err
	}
	if err := HTML(&page, bd, RenderOptions{}); err != nil {
		return nil, err
	}
	p := Payload{IncidentID: bd.Incident.ID, Title: bd.Incident.Title, Summary: bd.Summary, Location: location,
		Markdown: md.String(), HTML: page.String(), Bundle: bd}
	if a.cfg.PublicURL != "" {
		api := a.cfg.PublicURL + "/api/v1/incidents/" + url.PathEscape(bd.Incident.ID) + "/postmortem?format="
		p.Links = map[string]string{"page": a.pageURL(bd.Incident),
			"md": api + FormatMarkdown, "json": api + FormatJSON, "html": api + FormatHTML}
	}
	return json.Marshal(p)
}

// pageURL is the incident's live page as people reach it, or "" when
// correlator's address is not known.
func (a *Attacher) pageURL(in Incident) string {
	if a.cfg.LiveLink != nil {
		return a.cfg.LiveLink(in.ID, in.OpenedAt)
	}
	if a.cfg.PublicURL == "" {
		return ""
	}
	return a.cfg.PublicURL + "/incidents/" + url.PathEscape(in.ID)
}

// keep stores a payload until it is delivered: on disk in the incident's
// directory when there is one, else in memory.
func (a *Attacher) keep(id, dir string, body []byte) error {
	if dir != "" {
		return writeFileAtomic(filepath.Join(dir, pendingName), body)
	}
	a.mu.Lock()
	a.pending[id] = body
	a.mu.Unlock()
	return nil
}

func (a *Attacher) delivered(id, dir string) {
	if dir != "" {
		if err := os.Remove(filepath.Join(dir, pendingName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log.Warn("remove delivered payload", "incident_id", id, "err", err)
		}
		return
	}
	a.mu.Lock()
	delete(a.pending, id)
	a.mu.Unlock()
}

// permanentError is a webhook answer that retrying cannot change.
type permanentError struct{ error }

// post sends body with retries and returns the location the receiver
// answered with, if any.
func (a *Attacher) post(ctx context.Context, body []byte) (string, error) {
	wait := time.Duration(a.cfg.Backoff)
	var err error
	for attempt := 1; attempt <= a.cfg.Attempts; attempt++ {
		var loc string
		loc, err = a.postOnce(ctx, body)
		if err == nil {
			return loc, nil
		}
		var perm permanentError
		if errors.As(err, &perm) || attempt == a.cfg.Attempts {
			break
		}
		a.log.Warn("webhook attempt failed", "attempt", attempt, "retry_in", wait, "err", err)
		if serr := a.sleep(ctx, wait); serr != nil {
			return "", serr
		}
		wait = min(2*wait, time.Duration(a.cfg.MaxBackoff))
	}
	return "", err
}

func (a *Attacher) postOnce(ctx context.Context, body []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(a.cfg.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return "", permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "correlator-postmortem")
	for k, v := range a.cfg.WebhookHeaders {
		req.Header.Set(k, v.Reveal())
	}
	if a.cfg.WebhookSecret != "" {
		mac := hmac.New(sha256.New, []byte(a.cfg.WebhookSecret.Reveal()))
		mac.Write(body)
		req.Header.Set("X-Correlator-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := a.client.Do(req)
	if err != nil {
		// The URL may carry a token in its query: say only what failed.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return "", fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return "", permanentError{fmt.Errorf("webhook answered %s", resp.Status)}
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		return loc, nil
	}
	var r struct {
		URL string `json:"url"`
	}
	if json.Unmarshal(reply, &r) == nil {
		return r.URL, nil
	}
	return "", nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// dirName is an incident id made safe as a directory name; an id that had
// to change gets a hash of itself, so two ids cannot share a directory.
func dirName(id string) string {
	safe := unsafeName.ReplaceAllString(id, "_")
	if safe == id && id != "" {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	if len(safe) > 64 {
		safe = safe[:64]
	}
	return safe + "-" + hex.EncodeToString(sum[:4])
}
