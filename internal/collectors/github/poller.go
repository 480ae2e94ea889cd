package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/wait"
)

// Poller reads deployments through GitHub's REST API:
//
//	GET /repos/{owner}/{repo}/deployments?per_page=100   (newest first)
//	GET /repos/{owner}/{repo}/deployments/{id}/statuses?per_page=100
//
// It records each deployment's latest terminal status exactly as the
// webhook would (same change, same id), so running both is harmless and
// the poller fills in what the webhook missed (downtime, deliveries
// lost). Run backfills github.backfill (24h) at start, then polls every
// github.poll_interval (5m) from where the last poll began.
//
// Deployments are listed newest first until one is older than the cursor
// by more than DeploymentSlack (a deployment may succeed hours after it is
// created); the statuses of a deployment already seen with an outcome are
// not fetched again. Pages follow the Link header's rel="next" (only on
// the API's host, so the token goes nowhere else). When GitHub says the
// rate limit is spent (403 or 429 with X-RateLimit-Remaining: 0, or a
// Retry-After), the poller waits until X-RateLimit-Reset or for
// Retry-After seconds (at most MaxWait) and tries again; when a response
// says no requests remain, the next request waits for the reset first.
// The token is sent as a bearer token and never logged.
type Poller struct {
	cfg    settings
	w      changes.Writer
	client *http.Client
	log    *slog.Logger
	base   *url.URL

	// now and sleep are replaced by tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	resetAt time.Time              // when the spent rate limit resets
	seen    map[seenKey]seenDeploy // deployments with a recorded outcome
}

type seenKey struct {
	repo string
	id   int64
}

type seenDeploy struct {
	status  int64
	created time.Time
}

// Poller limits.
const (
	// DeploymentSlack is how long before the cursor a deployment may have
	// been created and still get its outcome after it.
	DeploymentSlack = 6 * time.Hour
	// MaxWait bounds one rate-limit wait.
	MaxWait = time.Hour
	// maxTries bounds the tries of one request (rate limits, 5xx).
	maxTries = 4
)

// NewPoller returns a poller writing to w (a changes.MergingWriter). client
// may be nil (a client with a 30 s timeout).
func NewPoller(cfg Config, w changes.Writer, client *http.Client, log *slog.Logger) (*Poller, error) {
	s, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	if s.Token == "" {
		return nil, errors.New("github.token: required for the poller")
	}
	if len(s.Repositories) == 0 {
		return nil, errors.New("github.repositories: the poller needs at least one")
	}
	base, _ := url.Parse(s.APIURL)
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Poller{cfg: s, w: w, client: client, log: log.With("collector", "github-poller"), base: base,
		now: time.Now, sleep: wait.Sleep, seen: map[seenKey]seenDeploy{}}, nil
}

// Run backfills, then polls until ctx ends; it returns nil then. A failed
// poll is logged and its range polled again next time.
func (p *Poller) Run(ctx context.Context) error {
	since := p.now().Add(-time.Duration(p.cfg.Backfill))
	for {
		start := p.now()
		n, err := p.Poll(ctx, since)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.log.Warn("poll failed; its range is polled again next time", "since", since, "changes", n, "err", err)
		} else {
			p.log.Debug("polled", "since", since, "changes", n)
			since = start.Add(-time.Minute) // overlap: statuses created while the poll ran
		}
		if err := p.sleep(ctx, time.Duration(p.cfg.PollInterval)); err != nil {
			return nil
		}
	}
}

// Poll records the outcomes, since since, of the deployments of every
// configured repository and returns how many changes it wrote. A failure
// in one repository does not stop the others; the errors are joined.
func (p *Poller) Poll(ctx context.Context, since time.Time) (int, error) {
	names := make([]string, 0, len(p.cfg.Repositories))
	for name := range p.cfg.Repositories {
		names = append(names, name)
	}
	sort.Strings(names)
	total := 0
	var errs []error
	for _, name := range names {
		n, err := p.pollRepo(ctx, name, p.cfg.Repositories[name], since)
		total += n
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	p.prune(since.Add(-DeploymentSlack))
	return total, errors.Join(errs...)
}

func (p *Poller) pollRepo(ctx context.Context, name string, repo Repository, since time.Time) (int, error) {
	owner, rname, _ := strings.Cut(name, "/")
	repoPath := "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(rname)
	next := p.endpoint(repoPath+"/deployments", "per_page=100")
	oldest := since.Add(-DeploymentSlack)
	var out []event.Change
	pending := map[seenKey]seenDeploy{} // seen once out is written
	for next != "" {
		var page []deployment
		var err error
		if next, err = p.get(ctx, next, &page); err != nil {
			return p.write(ctx, out, pending, err)
		}
		for _, d := range page {
			if d.CreatedAt.Before(oldest) {
				next = "" // newest first: the rest are older
				break
			}
			key := seenKey{name, d.ID}
			if _, done := p.seen[key]; done {
				continue
			}
			if _, ok := recordedEnvironment(repo, d.Environment); !ok {
				continue
			}
			var statuses []deploymentStatus
			if _, err := p.get(ctx, p.endpoint(fmt.Sprintf("%s/deployments/%d/statuses", repoPath, d.ID), "per_page=100"), &statuses); err != nil {
				return p.write(ctx, out, pending, err)
			}
			s, ok := latestTerminal(statuses)
			if !ok {
				continue // still pending: look again next time
			}
			if s.CreatedAt.Before(since) {
				p.seen[key] = seenDeploy{status: s.ID, created: d.CreatedAt}
				continue // recorded by an earlier poll (or before the backfill)
			}
			if ch, ok := p.cfg.deployChange(name, repo, d, s); ok {
				out = append(out, ch)
				pending[key] = seenDeploy{status: s.ID, created: d.CreatedAt}
			}
		}
	}
	return p.write(ctx, out, pending, nil)
}

// write hands the changes over, oldest first so that the Merger sees each
// service's deploys in order, marks their deployments seen once written,
// and returns the count with err (or the write's error).
func (p *Poller) write(ctx context.Context, cs []event.Change, seen map[seenKey]seenDeploy, err error) (int, error) {
	if len(cs) == 0 {
		return 0, err
	}
	slices.SortStableFunc(cs, func(a, b event.Change) int { return a.Time.Compare(b.Time) })
	if werr := p.w.Add(ctx, &event.Batch{Changes: cs}); werr != nil {
		return 0, errors.Join(err, fmt.Errorf("write: %w", werr))
	}
	maps.Copy(p.seen, seen)
	return len(cs), err
}

// latestTerminal returns the most recent success, failure or error status.
func latestTerminal(ss []deploymentStatus) (deploymentStatus, bool) {
	var best deploymentStatus
	found := false
	for _, s := range ss {
		if _, ok := terminal(s.State); ok && (!found || s.CreatedAt.After(best.CreatedAt)) {
			best, found = s, true
		}
	}
	return best, found
}

// prune forgets deployments created before t, which no poll lists again.
func (p *Poller) prune(t time.Time) {
	for k, v := range p.seen {
		if v.created.Before(t) {
			delete(p.seen, k)
		}
	}
}

func (p *Poller) endpoint(path, query string) string {
	u := *p.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = query
	return u.String()
}

// get fetches u into v and returns the next page's URL ("" if none),
// waiting out rate limits and retrying server errors.
func (p *Poller) get(ctx context.Context, u string, v any) (string, error) {
	for try := 1; ; try++ {
		if wait := p.resetAt.Sub(p.now()); wait > 0 {
			p.log.Info("rate limit spent; waiting for its reset", "wait", wait.Round(time.Second))
			if err := p.sleep(ctx, min(wait, MaxWait)); err != nil {
				return "", err
			}
		}
		next, retryIn, err := p.getOnce(ctx, u, v)
		if err == nil || retryIn < 0 || try >= maxTries {
			return next, err
		}
		p.log.Info("retrying", "err", err, "in", retryIn)
		if retryIn > 0 { // 0: the rate limit's reset, waited for above
			if err := p.sleep(ctx, min(retryIn, MaxWait)); err != nil {
				return "", err
			}
		}
	}
}

// getOnce does one request. retryIn is negative when the error is final.
func (p *Poller) getOnce(ctx context.Context, u string, v any) (next string, retryIn time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", -1, err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Authorization", "Bearer "+p.cfg.Token.Reveal())
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", -1, ctx.Err()
		}
		return "", 5 * time.Second, fmt.Errorf("GET %s: %w", req.URL.Path, err)
	}
	defer resp.Body.Close()
	remaining, hasRemaining := headerInt(resp.Header, "X-RateLimit-Remaining")
	reset, hasReset := headerInt(resp.Header, "X-RateLimit-Reset")
	if hasRemaining && remaining == 0 && hasReset {
		p.resetAt = time.Unix(reset, 0).Add(time.Second)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(v); err != nil {
			return "", -1, fmt.Errorf("GET %s: decode: %w", req.URL.Path, err)
		}
		return p.nextLink(resp.Header.Get("Link")), 0, nil
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests:
		msg := apiMessage(resp.Body)
		if s, ok := headerInt(resp.Header, "Retry-After"); ok {
			return "", time.Duration(s) * time.Second, fmt.Errorf("GET %s: secondary rate limit (%d): %s", req.URL.Path, resp.StatusCode, msg)
		}
		if hasRemaining && remaining == 0 {
			return "", 0, fmt.Errorf("GET %s: rate limit spent (%d): %s", req.URL.Path, resp.StatusCode, msg)
		}
		return "", -1, fmt.Errorf("GET %s: forbidden (%d): %s; does the token have read access to deployments?", req.URL.Path, resp.StatusCode, msg)
	case resp.StatusCode >= 500:
		return "", 5 * time.Second, fmt.Errorf("GET %s: GitHub answered %d", req.URL.Path, resp.StatusCode)
	}
	return "", -1, fmt.Errorf("GET %s: GitHub answered %d: %s", req.URL.Path, resp.StatusCode, apiMessage(resp.Body))
}

// nextLink returns the rel="next" URL of a Link header, if it is on the
// API's host.
func (p *Poller) nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		isNext := false
		for _, prm := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(prm), "="); ok && k == "rel" && slices.Contains(strings.Fields(strings.Trim(v, `"`)), "next") {
				isNext = true
			}
		}
		if !isNext {
			continue
		}
		u, err := url.Parse(target[1 : len(target)-1])
		if err != nil || u.Scheme != p.base.Scheme || u.Host != p.base.Host {
			p.log.Warn("ignoring a next page on another host", "link", target)
			return ""
		}
		return u.String()
	}
	return ""
}

func headerInt(h http.Header, name string) (int64, bool) {
	v := h.Get(name)
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n, err == nil
}

// apiMessage reads GitHub's error message from a response body.
func apiMessage(r io.Reader) string {
	var e struct {
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return e.Message
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
