package sentry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/wait"
)

// CursorStore keeps the Poller's progress per project across restarts. Its
// methods are called from the Poller's goroutine only.
type CursorStore interface {
	// LoadCursor returns the time up to which project was read, and false
	// when nothing was saved.
	LoadCursor(ctx context.Context, project string) (time.Time, bool, error)
	// SaveCursor records that project was read up to t.
	SaveCursor(ctx context.Context, project string, t time.Time) error
}

// PollerOptions are the Poller's optional collaborators.
type PollerOptions struct {
	// Client makes the requests; default an http.Client with the config's
	// timeout.
	Client *http.Client
	// Cursors keeps progress; default in memory, so that a restart reads
	// Backfill again (harmless: the ids are deterministic).
	Cursors CursorStore
}

// Poller pulls error events from Sentry's REST API, for backfill and for
// events that reached Sentry but not the intake. For each configured
// project it lists the issues with events since its cursor
// (GET /api/0/organizations/{org}/issues/?project={id}), then each issue's
// events with their full body
// (GET /api/0/organizations/{org}/issues/{issue_id}/events/?full=true),
// following the Link header's cursors. Events map as the intake maps them
// and get the same ids, so an event seen both ways is stored once.
//
// Run owns the Poller; its methods are not safe for concurrent use.
type Poller struct {
	cfg     Config
	m       *mapper
	w       Writer
	log     *slog.Logger
	met     *metrics
	client  *http.Client
	cursors CursorStore
	base    *url.URL
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
}

// maxAttempts bounds the tries of one request on 429 and 5xx answers.
const maxAttempts = 5

// maxRetryWait caps a Retry-After the Poller is willing to honour.
const maxRetryWait = 5 * time.Minute

// NewPoller returns a Poller for cfg, which must validate and configure the
// API (organization, auth_token).
func NewPoller(cfg Config, w Writer, log *slog.Logger, reg prometheus.Registerer, opt PollerOptions) (*Poller, error) {
	if err := errors.Join(cfg.Validate(), cfg.validateAPI()); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("sentry poller: nil writer")
	}
	cfg = cfg.withDefaults()
	base, err := url.Parse(strings.TrimSuffix(cfg.API.URL, "/"))
	if err != nil {
		return nil, fmt.Errorf("sentry.api.url: %w", err)
	}
	met, err := newMetrics(reg, CollectorAPI, false)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Client == nil {
		opt.Client = &http.Client{Timeout: time.Duration(cfg.API.Timeout)}
	}
	if opt.Cursors == nil {
		opt.Cursors = &memoryCursors{m: map[string]time.Time{}}
	}
	return &Poller{
		cfg: cfg, m: newMapper(cfg), w: w, log: log.With("component", "sentry_poller"), met: met,
		client: opt.Client, cursors: opt.Cursors, base: base, now: time.Now, sleep: wait.Sleep,
	}, nil
}

// Run polls at once and then every Interval until ctx ends; it returns nil
// then. A failed poll is logged and counted, and the next one retries from
// the same cursor.
func (p *Poller) Run(ctx context.Context) error {
	t := time.NewTicker(time.Duration(p.cfg.API.Interval))
	defer t.Stop()
	for {
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("sentry poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll reads every project once, from its cursor to now. Projects fail
// independently; the errors are joined.
func (p *Poller) Poll(ctx context.Context) error {
	var errs []error
	for i := range p.cfg.Projects {
		if err := p.pollProject(ctx, &p.cfg.Projects[i]); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p.met.errors.WithLabelValues("poll").Inc()
			errs = append(errs, fmt.Errorf("poll sentry project %s: %w", p.cfg.Projects[i].ID, err))
		}
	}
	if len(errs) == 0 {
		p.met.success(p.now())
	}
	return errors.Join(errs...)
}

func (p *Poller) pollProject(ctx context.Context, proj *Project) error {
	now := p.now()
	since, ok, err := p.cursors.LoadCursor(ctx, proj.ID)
	if err != nil {
		return fmt.Errorf("load cursor: %w", err)
	}
	if !ok {
		since = now.Add(-time.Duration(p.cfg.API.Backfill))
	}
	start, end := since.Add(-time.Duration(p.cfg.API.Overlap)), now
	window := url.Values{
		"start": {start.UTC().Format(apiTime)},
		"end":   {end.UTC().Format(apiTime)},
	}
	issues := p.endpoint("organizations", p.cfg.API.Organization, "issues")
	q := url.Values{"project": {proj.ID}, "query": {""}, "limit": {"100"}}
	for k, v := range window {
		q[k] = v
	}
	accepted := 0
	err = p.paginate(ctx, issues, q, func(body []byte) error {
		var page []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("decode issues: %w", err)
		}
		for _, is := range page {
			if !isDigits(is.ID) {
				return fmt.Errorf("decode issues: issue id %q is not numeric", cut(is.ID, 40))
			}
			eq := url.Values{"full": {"true"}}
			for k, v := range window {
				eq[k] = v
			}
			events := p.endpoint("organizations", p.cfg.API.Organization, "issues", is.ID, "events")
			err := p.paginate(ctx, events, eq, func(body []byte) error {
				n, err := p.writeEvents(ctx, proj, is.ID, body, now)
				accepted += n
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := p.cursors.SaveCursor(ctx, proj.ID, end); err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	p.met.lag.Set(p.now().Sub(end).Seconds())
	p.log.Debug("sentry project polled", "project", proj.ID, "events", accepted, "start", start, "end", end)
	return nil
}

// apiTime is the ISO 8601 form Sentry's start and end parameters document
// (UTC, no zone).
const apiTime = "2006-01-02T15:04:05"

// writeEvents maps one page of events and writes the good ones; a bad event
// is counted and logged, and does not stop the page.
func (p *Poller) writeEvents(ctx context.Context, proj *Project, issue string, body []byte, now time.Time) (int, error) {
	var page []json.RawMessage
	if err := json.Unmarshal(body, &page); err != nil {
		return 0, fmt.Errorf("decode events of issue %s: %w", issue, err)
	}
	recs := make([]event.ErrorEvent, 0, len(page))
	for i, raw := range page {
		rec, err := p.m.toRecord(raw, origin{project: proj.ID, fallbackTime: now, now: now})
		if errors.Is(err, errNotError) {
			continue
		}
		if err != nil {
			reason := reasonMalformed
			if errors.Is(err, errNoService) {
				reason = reasonNoService
			}
			p.met.rejected.WithLabelValues(reason).Inc()
			p.log.Info("sentry event rejected", "project", proj.ID, "issue", issue, "index", i, "reason", reason, "err", err)
			continue
		}
		if rec.Attributes[AttrIssueID] == "" {
			rec.Attributes[AttrIssueID] = issue
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	if err := p.w.Add(ctx, &event.Batch{Errors: recs}); err != nil {
		p.met.rejected.WithLabelValues(reasonWriteFailed).Add(float64(len(recs)))
		return 0, fmt.Errorf("write events: %w", err)
	}
	p.met.accepted.Add(float64(len(recs)))
	return len(recs), nil
}

// endpoint builds an API URL from escaped path segments.
func (p *Poller) endpoint(segs ...string) *url.URL {
	u := *p.base
	path := strings.TrimSuffix(u.Path, "/") + "/api/0"
	raw := path
	for _, s := range segs {
		path += "/" + s
		raw += "/" + url.PathEscape(s)
	}
	u.Path, u.RawPath = path+"/", raw+"/"
	return &u
}

// paginate GETs u with q and every following page, calling page with each
// body. It follows the cursor of the Link header's rel="next" entry while
// that says results="true"; the cursor is put on u, never the URL the
// header gives, so a response cannot send the token elsewhere.
func (p *Poller) paginate(ctx context.Context, u *url.URL, q url.Values, page func([]byte) error) error {
	for seen := map[string]bool{}; ; {
		uu := *u
		uu.RawQuery = q.Encode()
		body, link, err := p.get(ctx, &uu)
		if err != nil {
			return err
		}
		if err := page(body); err != nil {
			return err
		}
		next := nextCursor(link)
		if next == "" || seen[next] {
			return nil
		}
		seen[next] = true
		q.Set("cursor", next)
	}
}

// get performs one GET, retrying on 429 (after Retry-After) and 5xx (with
// backoff). It returns the body and the Link header.
func (p *Poller) get(ctx context.Context, u *url.URL) ([]byte, string, error) {
	what := u.Path
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, "", err
		}
		req.Header.Set("Authorization", "Bearer "+p.cfg.API.AuthToken.Reveal())
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "correlator-sentry-collector")
		resp, err := p.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			if attempt >= maxAttempts {
				return nil, "", fmt.Errorf("GET %s: %w", what, stripURL(err))
			}
			if err := p.sleep(ctx, backoff(attempt)); err != nil {
				return nil, "", err
			}
			continue
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK && rerr == nil:
			return body, resp.Header.Get("Link"), nil
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || rerr != nil:
			if attempt >= maxAttempts {
				return nil, "", fmt.Errorf("GET %s: %s after %d attempts%s", what, resp.Status, attempt, apiDetail(body))
			}
			wait := backoff(attempt)
			if d, ok := retryAfter(resp.Header, p.now()); ok {
				wait = d
			}
			if wait > maxRetryWait {
				return nil, "", fmt.Errorf("GET %s: %s, retry after %s is too long to wait", what, resp.Status, wait)
			}
			p.log.Info("sentry api asks to wait", "path", what, "status", resp.StatusCode, "wait", wait)
			if err := p.sleep(ctx, wait); err != nil {
				return nil, "", err
			}
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return nil, "", fmt.Errorf("GET %s: %s: check api.auth_token (it needs the event:read scope) and api.organization%s", what, resp.Status, apiDetail(body))
		default:
			return nil, "", fmt.Errorf("GET %s: %s%s", what, resp.Status, apiDetail(body))
		}
	}
}

// stripURL drops the URL from a client error: it is long and says nothing
// the message does not.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// apiDetail is Sentry's {"detail": ...} error text, for error messages.
func apiDetail(body []byte) string {
	var d struct {
		Detail any `json:"detail"`
	}
	if json.Unmarshal(body, &d) != nil || d.Detail == nil {
		return ""
	}
	return fmt.Sprintf(" (%s)", cut(fmt.Sprint(d.Detail), 200))
}

func backoff(attempt int) time.Duration {
	return time.Duration(1<<min(attempt-1, 5)) * time.Second
}

// retryAfter reads Retry-After (seconds or an HTTP date), then Sentry's
// X-Sentry-Rate-Limit-Reset (Unix seconds).
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
			return time.Duration(s * float64(time.Second)), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	if v := strings.TrimSpace(h.Get("X-Sentry-Rate-Limit-Reset")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil {
			return max(time.Unix(0, int64(s*1e9)).Sub(now), 0), true
		}
	}
	return 0, false
}

// nextCursor returns the cursor of the rel="next" link when it has
// results="true", else "". The header looks like
//
//	<https://sentry.io/api/0/...?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1",
//	<https://sentry.io/api/0/...?cursor=0:100:0>; rel="next"; results="true"; cursor="0:100:0"
func nextCursor(link string) string {
	for _, entry := range splitLinks(link) {
		params := map[string]string{}
		parts := strings.Split(entry, ";")
		for _, p := range parts[1:] {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok {
				params[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
		if params["rel"] != "next" {
			continue
		}
		if params["results"] != "true" {
			return ""
		}
		if c := params["cursor"]; c != "" {
			return c
		}
		// No cursor parameter: take it from the URL's query.
		target := strings.Trim(strings.TrimSpace(parts[0]), "<>")
		if u, err := url.Parse(target); err == nil {
			return u.Query().Get("cursor")
		}
		return ""
	}
	return ""
}

// splitLinks splits a Link header at the commas between entries, not at
// commas inside <...>.
func splitLinks(h string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case '<':
			depth++
		case '>':
			depth = max(depth-1, 0)
		case ',':
			if depth == 0 {
				out = append(out, h[start:i])
				start = i + 1
			}
		}
	}
	if strings.TrimSpace(h[start:]) != "" {
		out = append(out, h[start:])
	}
	return out
}

// memoryCursors is the default CursorStore.
type memoryCursors struct {
	mu sync.Mutex // mu guards m.
	m  map[string]time.Time
}

func (c *memoryCursors) LoadCursor(_ context.Context, project string) (time.Time, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[project]
	return t, ok, nil
}

func (c *memoryCursors) SaveCursor(_ context.Context, project string, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[project] = t
	return nil
}
