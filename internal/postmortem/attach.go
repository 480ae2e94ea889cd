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
	"github.com/correlator/correlator/internal/wait"
)

// AttachConfig says where a resolved incident's bundle goes: a directory,
// a webhook, or both. YAML keys in snake_case; secrets print as <secret>.
type AttachConfig struct {
	// Dir receives DIR/<incident>/index.{md,html,json} and the charts.
	// With a webhook it also keeps the payloads not yet delivered, so
	// that none is lost across restarts.
	Dir string `yaml:"dir" json:"dir"`
	// WebhookURL receives a POST of the bundle as JSON (see Payload). It
	// is a Secret because incoming-webhook URLs (Slack, Teams, ...) carry
	// their token in the path or query: it never prints, not even in
	// check-config or in an error.
	//
	// Every POST carries the header X-Correlator-Delivery (see
	// DeliveryHeader), the same on every attempt of one payload, so that
	// a receiver can drop a payload it already has.
	WebhookURL secret.Secret `yaml:"webhook_url" json:"webhook_url"`
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
		c.WebhookURL = secret.Secret(v)
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
	if raw := c.WebhookURL.Reveal(); raw != "" {
		// Never quote the value: it may hold the receiver's token.
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("postmortem.webhook_url: want an http(s) URL (value not shown: it may hold a token)"))
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
//
// A payload may arrive more than once (a retry after a timeout whose
// request did get through, a restart between the POST and the removal of
// the kept copy): each POST carries the header X-Correlator-Delivery
// (DeliveryHeader), "<incident id>.<first 16 hex digits of the SHA-256 of
// the body>", identical on every attempt of the same payload, so that a
// receiver can ignore one it has already stored. A second resolve of the
// same incident makes a new payload, hence a new delivery id.
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

// DeliveryHeader names the idempotency key sent with every webhook POST
// (see Payload).
const DeliveryHeader = "X-Correlator-Delivery"

// DeliveryID is the DeliveryHeader value of body, the payload of
// incident id. An id that is not printable ASCII is query-escaped, so
// that the header stays a valid header value.
func DeliveryID(id string, body []byte) string {
	sum := sha256.Sum256(body)
	if strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		id = url.QueryEscape(id)
	}
	return id + "." + hex.EncodeToString(sum[:8])
}

// Attacher writes or posts the bundle of each resolved incident.
type Attacher struct {
	b      *Builder
	cfg    AttachConfig
	client *http.Client
	log    *slog.Logger
	// sleep waits between attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error

	// mu guards pending and inflight.
	mu sync.Mutex
	// pending holds the payloads not delivered that are not on disk (no
	// Dir, or it could not be written), by incident id.
	pending map[string][]byte
	// inflight holds, by dirName of the incident id, the deliveries under
	// way; the channel closes when one ends. Whoever holds an id is the
	// only one to post, keep or drop its payload: without it RetryPending
	// would post a payload that OnResolve is still posting.
	inflight map[string]chan struct{}
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
		sleep: wait.Sleep, pending: map[string][]byte{}, inflight: map[string]chan struct{}{}}
}

// tryClaim marks the delivery of key as under way and returns its
// release, or false when another is.
func (a *Attacher) tryClaim(key string) (func(), bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, busy := a.inflight[key]; busy {
		return nil, false
	}
	done := make(chan struct{})
	a.inflight[key] = done
	return func() {
		a.mu.Lock()
		delete(a.inflight, key)
		a.mu.Unlock()
		close(done)
	}, true
}

// claim waits until no delivery of key is under way, then claims it.
func (a *Attacher) claim(ctx context.Context, key string) (func(), error) {
	for {
		if release, ok := a.tryClaim(key); ok {
			return release, nil
		}
		a.mu.Lock()
		done, busy := a.inflight[key]
		a.mu.Unlock()
		if !busy {
			continue
		}
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Names, in an incident's directory, of a payload not delivered and of
// one the receiver refused for good (kept for a person to look at, or to
// rename back to pendingName once the receiver is fixed).
const (
	pendingName = "webhook-payload.pending.json"
	failedName  = "webhook-payload.failed.json"
)

// OnResolve builds the bundle of the resolved incident id, writes it to
// the directory and posts it to the webhook (each when configured), and
// returns where it is: the URL the webhook answered with (a Location
// header, or a JSON body's "url"), else the public live page, else the
// written index.html.
//
// When the webhook fails after every attempt the error says so and the
// payload is kept (in the directory, else in memory) for RetryPending;
// when the receiver refuses it for good (a 4xx other than 408 and 429) it
// is set aside instead (DIR/<incident>/webhook-payload.failed.json, or
// dropped when there is no directory). When the directory cannot be
// written the webhook is still tried and the error says the files were
// not written.
func (a *Attacher) OnResolve(ctx context.Context, id string) (string, error) {
	bd, err := a.b.Build(ctx, id)
	if err != nil {
		return "", err
	}
	location := a.pageURL(bd.Incident)
	dir := ""
	var writeErr error
	if a.cfg.Dir != "" {
		dir = filepath.Join(a.cfg.Dir, dirName(id))
		paths, err := WriteDir(dir, bd, FormatMarkdown, FormatJSON, FormatHTML)
		if err != nil {
			// Go on to the webhook: a full disk must not also lose the
			// delivery.
			writeErr = fmt.Errorf("post-mortem files of %s not written to %s: %w", id, dir, err)
			a.log.Error("post-mortem bundle not written", "incident_id", id, "dir", dir, "err", err)
		} else {
			if location == "" {
				location = paths[2] // index.html
			}
			a.log.Info("post-mortem bundle written", "incident_id", id, "dir", dir)
		}
	}
	if a.cfg.WebhookURL == "" {
		return location, writeErr
	}
	body, err := a.payload(bd, location)
	if err != nil {
		return location, errors.Join(writeErr, err)
	}
	// One delivery of an incident at a time: RetryPending skips this one
	// while it is under way, and a second resolve waits for the first.
	release, err := a.claim(ctx, dirName(id))
	if err != nil {
		return location, errors.Join(writeErr, err)
	}
	defer release()
	// Keep the payload before the first attempt: a crash mid-retry loses
	// nothing.
	kept := a.keep(id, dir, body)
	remote, err := a.post(ctx, id, body)
	var perm permanentError
	switch {
	case errors.As(err, &perm):
		a.refused(id, kept, err)
		return location, errors.Join(writeErr, fmt.Errorf("post bundle of %s to the webhook: refused, not retried: %w", id, err))
	case err != nil:
		return location, errors.Join(writeErr, fmt.Errorf("post bundle of %s to the webhook (kept for a later retry): %w", id, err))
	}
	a.delivered(id, kept)
	a.log.Info("post-mortem bundle posted", "incident_id", id)
	if remote != "" {
		location = remote
	}
	return location, writeErr
}

// RetryPending posts again every payload that was not delivered, and
// returns how many are still pending. Call it periodically. A payload
// that OnResolve is posting at the time is left to it (and not counted);
// a kept file that cannot be read is skipped, counted and reported in the
// error; a corrupt one, or one the receiver refuses for good, is set
// aside as webhook-payload.failed.json with one error log, and is no
// longer pending.
func (a *Attacher) RetryPending(ctx context.Context) (int, error) {
	if a.cfg.WebhookURL == "" {
		return 0, nil
	}
	a.mu.Lock()
	ids := make([]string, 0, len(a.pending))
	for id := range a.pending {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	var files []string
	if a.cfg.Dir != "" {
		var err error
		if files, err = filepath.Glob(filepath.Join(a.cfg.Dir, "*", pendingName)); err != nil {
			return 0, err
		}
	}
	left := 0
	var errs []error
	retry := func(id, dir string, body []byte) {
		_, err := a.post(ctx, id, body)
		var perm permanentError
		switch {
		case errors.As(err, &perm):
			a.refused(id, dir, err)
		case err != nil:
			left++
			errs = append(errs, fmt.Errorf("incident %s: %w", id, err))
		default:
			a.delivered(id, dir)
			a.log.Info("post-mortem bundle posted on retry", "incident_id", id)
		}
	}
	for _, id := range ids {
		release, ok := a.tryClaim(dirName(id))
		if !ok {
			continue
		}
		// Read again under the claim: it may have been delivered since.
		a.mu.Lock()
		body, ok := a.pending[id]
		a.mu.Unlock()
		if ok {
			retry(id, "", body)
		}
		release()
	}
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		dir := filepath.Dir(f)
		release, ok := a.tryClaim(filepath.Base(dir))
		if !ok {
			continue
		}
		body, err := os.ReadFile(f)
		switch {
		case errors.Is(err, os.ErrNotExist):
			// Delivered since the listing.
		case err != nil:
			left++
			a.log.Warn("pending post-mortem payload unreadable, skipped", "file", f, "err", err)
			errs = append(errs, fmt.Errorf("read pending payload: %w", err))
		default:
			var p struct {
				IncidentID string `json:"incident_id"`
			}
			if err := json.Unmarshal(body, &p); err != nil || p.IncidentID == "" || dirName(p.IncidentID) != filepath.Base(dir) {
				a.setAside(f, dir, "corrupt payload", err)
				break
			}
			retry(p.IncidentID, dir, body)
		}
		release()
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
// directory when there is one and it can be written, else in memory. It
// returns the directory it went to, "" for memory. The caller holds the
// incident's claim.
func (a *Attacher) keep(id, dir string, body []byte) string {
	if dir != "" {
		err := writeFileAtomic(filepath.Join(dir, pendingName), body)
		if err == nil {
			return dir
		}
		a.log.Error("undelivered post-mortem payload kept in memory only: lost on restart", "incident_id", id, "err", err)
	}
	a.mu.Lock()
	a.pending[id] = body
	a.mu.Unlock()
	return ""
}

// delivered forgets a payload kept by keep. The caller holds the
// incident's claim.
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

// refused sets aside a payload the receiver will never take, so that it
// is neither retried nor reported every minute. The caller holds the
// incident's claim.
func (a *Attacher) refused(id, dir string, err error) {
	if dir == "" {
		a.mu.Lock()
		delete(a.pending, id)
		a.mu.Unlock()
		a.log.Error("post-mortem payload refused by the webhook, dropped", "incident_id", id, "err", err)
		return
	}
	a.setAside(filepath.Join(dir, pendingName), dir, "refused by the webhook", err)
}

func (a *Attacher) setAside(file, dir, why string, err error) {
	to := filepath.Join(dir, failedName)
	if rerr := os.Rename(file, to); rerr != nil {
		a.log.Error("post-mortem payload "+why+", and not set aside: it will be tried again", "file", file, "err", err, "rename_err", rerr)
		return
	}
	a.log.Error("post-mortem payload "+why+", set aside and not retried", "file", to, "err", err)
}

// permanentError is a webhook answer that retrying cannot change.
type permanentError struct{ error }

// post sends the payload of incident id with retries and returns the
// location the receiver answered with, if any.
func (a *Attacher) post(ctx context.Context, id string, body []byte) (string, error) {
	wait := time.Duration(a.cfg.Backoff)
	delivery := DeliveryID(id, body)
	var err error
	for attempt := 1; attempt <= a.cfg.Attempts; attempt++ {
		var loc string
		loc, err = a.postOnce(ctx, delivery, body)
		if err == nil {
			return loc, nil
		}
		var perm permanentError
		if errors.As(err, &perm) || attempt == a.cfg.Attempts {
			break
		}
		a.log.Warn("webhook attempt failed", "incident_id", id, "attempt", attempt, "retry_in", wait, "err", err)
		if serr := a.sleep(ctx, wait); serr != nil {
			return "", serr
		}
		wait = min(2*wait, time.Duration(a.cfg.MaxBackoff))
	}
	return "", err
}

func (a *Attacher) postOnce(ctx context.Context, delivery string, body []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(a.cfg.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.WebhookURL.Reveal(), bytes.NewReader(body))
	if err != nil {
		// The error quotes the URL, which may hold a token.
		return "", permanentError{errors.New("webhook: invalid postmortem.webhook_url")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "correlator-postmortem")
	req.Header.Set(DeliveryHeader, delivery)
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
