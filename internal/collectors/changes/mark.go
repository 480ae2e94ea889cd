package changes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// MarkKinds are the kinds `correlator mark` records.
var MarkKinds = []string{"deploy", "rollback", "flag", "config", "infra"}

// MarkFlags are the flags of `correlator mark KIND`. Register adds them to
// a FlagSet (the CLI adds --server and --token beside them); Change builds
// the change once the set is parsed.
type MarkFlags struct {
	Service, Version, Previous, Env, Title, URL, Commit, Author, Source string
	Flag, Key, Old, New, At                                             string
	Attrs                                                               attrFlag
}

// attrFlag collects repeated --attr key=value.
type attrFlag map[string]string

func (a *attrFlag) String() string { return "" }

func (a *attrFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	if *a == nil {
		*a = map[string]string{}
	}
	(*a)[strings.TrimSpace(k)] = v
	return nil
}

// Register adds the flags to fs.
func (f *MarkFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Service, "service", "", "the service changed (required)")
	fs.StringVar(&f.Version, "version", "", "the version put in place: a tag, an image tag or a commit (required for deploy and rollback)")
	fs.StringVar(&f.Previous, "previous", "", "the version it replaced")
	fs.StringVar(&f.Env, "env", "", "the environment, named as the other sources name it (production)")
	fs.StringVar(&f.Title, "title", "", "a one-line description")
	fs.StringVar(&f.URL, "url", "", "a link to the pipeline run, pull request or flag")
	fs.StringVar(&f.Commit, "commit", "", "the commit deployed, when --version is a tag")
	fs.StringVar(&f.Author, "author", "", "who made the change")
	fs.StringVar(&f.Source, "source", "mark", "the source recorded with the change")
	fs.StringVar(&f.Flag, "flag", "", "flag: the flag's key (required for flag)")
	fs.StringVar(&f.Key, "key", "", "config: the setting changed")
	fs.StringVar(&f.Old, "old", "", "flag: the state before (on, off or a percentage such as 10%); config: the old value")
	fs.StringVar(&f.New, "new", "", "flag: the state after (required for flag); config: the new value")
	fs.StringVar(&f.At, "at", "now", "when: RFC 3339, now, -DURATION (-5m) or Unix seconds")
	fs.Var(&f.Attrs, "attr", "an extra attribute key=value (repeatable)")
}

// Change builds the change of the given kind from the parsed flags. now is
// the time "now" and offsets refer to.
func (f *MarkFlags) Change(kind string, now time.Time) (event.Change, error) {
	k := strings.ToLower(strings.TrimSpace(kind))
	if !slices.Contains(MarkKinds, k) {
		return event.Change{}, fmt.Errorf("unknown kind %q: want %s", kind, strings.Join(MarkKinds, ", "))
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c := event.Change{
		Kind: event.ChangeKind(k), Service: strings.TrimSpace(f.Service), Environment: strings.TrimSpace(f.Env),
		Version: strings.TrimSpace(f.Version), PreviousVersion: strings.TrimSpace(f.Previous),
		Commit: strings.TrimSpace(f.Commit), Author: f.Author, Title: f.Title, URL: f.URL, Source: strings.TrimSpace(f.Source),
	}
	if c.Service == "" {
		bad("--service is required")
	}
	if c.Source == "" {
		bad("--source must not be empty")
	}
	var err error
	if c.Time, err = ParseTime(f.At, now); err != nil {
		bad("--at: %v", err)
	}
	if c.URL != "" {
		if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("--url: %q is not an http(s) URL", c.URL)
		}
	}
	attrs := map[string]string{}
	for key, v := range f.Attrs {
		attrs[key] = v
	}
	switch c.Kind {
	case event.ChangeDeploy, event.ChangeRollback:
		if c.Version == "" && c.Commit == "" {
			bad("--version is required for %s: the tag, image tag or commit it put in place", k)
		}
		if f.Flag != "" || f.Key != "" || f.Old != "" || f.New != "" {
			bad("--flag, --key, --old and --new are for flag and config changes; a %s takes --version and --previous", k)
		}
	case event.ChangeFlag:
		if f.Flag == "" {
			bad("--flag is required for a flag change")
		}
		if f.Key != "" {
			bad("--key is for config changes; a flag change takes --flag")
		}
		newState, oldState := "", ""
		if f.New == "" {
			bad("--new is required for a flag change: on, off or a percentage such as 10%%")
		} else if newState, err = FlagState(f.New); err != nil {
			bad("--new: %v", err)
		}
		if f.Old != "" {
			if oldState, err = FlagState(f.Old); err != nil {
				bad("--old: %v", err)
			}
		}
		attrs[FlagAttr], attrs[NewAttr] = f.Flag, newState
		if oldState != "" {
			attrs[OldAttr] = oldState
		}
		if c.Title == "" && newState != "" {
			if oldState != "" {
				c.Title = fmt.Sprintf("Flag %s: %s → %s", f.Flag, oldState, newState)
			} else {
				c.Title = fmt.Sprintf("Flag %s: %s", f.Flag, newState)
			}
		}
	default: // config, infra
		if f.Flag != "" {
			bad("--flag is for flag changes; a %s change takes --key, --old and --new", k)
		}
		if f.Key != "" {
			attrs["key"] = f.Key
		}
		if f.Old != "" {
			attrs[OldAttr] = f.Old
		}
		if f.New != "" {
			attrs[NewAttr] = f.New
		}
		if (f.Old != "" || f.New != "") && f.Key == "" {
			bad("--old and --new need --key, the setting they belong to")
		}
		if c.Title == "" && f.Key != "" && f.New != "" {
			c.Title = fmt.Sprintf("%s: set %s to %s", c.Service, f.Key, f.New)
			if f.Old != "" {
				c.Title += fmt.Sprintf(" (was %s)", f.Old)
			}
		}
	}
	if len(attrs) > 0 {
		c.Attributes = attrs
	}
	if len(errs) > 0 {
		return event.Change{}, errors.Join(errs...)
	}
	if err := Validate(&c); err != nil {
		return event.Change{}, err
	}
	// A change with an identity carries its IdentityID, which asks the
	// server to merge it with the other sources of the same change.
	c.ID = IdentityID(&c)
	return c, nil
}

// ParseMarkArgs parses the arguments of `correlator mark KIND` (without
// --server and --token, which the CLI handles) into the change to record.
// Errors name the flag at fault; several are joined.
func ParseMarkArgs(kind string, args []string) (event.Change, error) {
	fs := flag.NewFlagSet("mark "+kind, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f MarkFlags
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		return event.Change{}, err
	}
	if fs.NArg() > 0 {
		return event.Change{}, fmt.Errorf("unexpected argument %q: every value goes with a flag, such as --version %s", fs.Arg(0), fs.Arg(0))
	}
	return f.Change(kind, time.Now())
}

// MarkRetries is how many times Mark tries; MarkBackoff is the first wait
// between tries, doubled each time.
var (
	MarkRetries = 3
	MarkBackoff = time.Second
)

// Mark records c on the server at base URL server: it POSTs c as one line
// of NDJSON to /api/v1/ingest/changes with the bearer token (none when
// token is empty). It retries network errors and 502, 503 and 504
// answers; the id makes a retry harmless. The token never appears in an
// error.
func Mark(ctx context.Context, client *http.Client, server, token string, c event.Change) error {
	if client == nil {
		client = http.DefaultClient
	}
	u, err := url.Parse(strings.TrimSpace(server))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--server: %q is not an http(s) URL such as https://correlator.example.com", server)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/api/v1/ingest/changes"
	u.RawQuery, u.Fragment = "", ""
	line, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode change: %w", err)
	}
	line = append(line, '\n')
	wait := MarkBackoff
	for attempt := 1; ; attempt++ {
		retry, err := markOnce(ctx, client, u.String(), token, line)
		if err == nil || !retry || attempt >= MarkRetries {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// markOnce posts once; retry says whether another try may succeed.
func markOnce(ctx context.Context, client *http.Client, endpoint, token string, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("post the change: %w", err)
	}
	defer resp.Body.Close()
	var env struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Accepted int `json:"accepted"`
		} `json:"data"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(raw, &env)
	msg := env.Error
	if msg == "" {
		msg = strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
	}
	switch {
	case resp.StatusCode/100 == 2:
		if env.Status == "success" && env.Data.Accepted == 0 {
			return false, errors.New("the server accepted no change")
		}
		return false, nil
	case resp.StatusCode == http.StatusUnauthorized:
		return false, fmt.Errorf("the server refused the token (401): %s", msg)
	case resp.StatusCode == http.StatusForbidden:
		return false, fmt.Errorf("the token may not ingest (403): %s", msg)
	case resp.StatusCode == http.StatusBadGateway, resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		return true, fmt.Errorf("the server is unavailable (%d): %s", resp.StatusCode, msg)
	}
	return false, fmt.Errorf("the server rejected the change (%d): %s", resp.StatusCode, msg)
}
