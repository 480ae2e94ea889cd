package changes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/event"
)

// WebhookConfig configures the generic change webhook, for any system that
// can POST JSON when it changes something (a CI job, a deploy script, a
// tool without a collector of its own).
//
// Without a template the body is one change in correlator's change shape
// (the NDJSON ingest format: time, kind, service, environment, version,
// previous_version, commit, author, title, url, source, attributes), or a
// JSON array of them. time may be left out (the time received), and so
// may id: a change with an identity gets its IdentityID, so it merges with
// the other sources of the same deploy; any other a content-derived id.
//
// With a template, the body is the sender's own JSON and the template says
// where each field is:
//
//	webhooks:
//	  jenkins:
//	    secret: s3cret              # optional
//	    template:
//	      items: ""                 # path to an array of changes; empty: the body is one
//	      fields:                   # change field: dotted path into the item
//	        service: job.service
//	        version: build.tag
//	        commit: build.scm.commit
//	        time: build.finished    # RFC 3339, Unix seconds or milliseconds
//	        author: build.user
//	        url: build.url
//	        attributes.pipeline: job.name
//	      static:                   # change field: fixed value
//	        kind: deploy
//	        environment: production
//	        source: jenkins
//
// Paths are dot-separated member names; a number selects an array element
// (commits.0.id). A field whose path is missing stays empty; a path to an
// object or array is an error. kind defaults to deploy, source to the
// webhook's name.
type WebhookConfig = config.ChangeWebhook

// Template maps a foreign JSON payload onto changes.
type Template = config.ChangeTemplate

// templateFields are the change fields a template may set, besides
// attributes.NAME.
var templateFields = []string{"id", "time", "kind", "service", "environment", "version", "previous_version",
	"commit", "author", "title", "url", "source"}

// CheckTemplate reports what is wrong with a template.
func CheckTemplate(t *Template) error {
	var errs []error
	for _, m := range []map[string]string{t.Fields, t.Static} {
		for f := range m {
			if !slices.Contains(templateFields, f) && !(strings.HasPrefix(f, "attributes.") && len(f) > len("attributes.")) {
				errs = append(errs, fmt.Errorf("template: unknown change field %q (want one of %s, or attributes.NAME)", f, strings.Join(templateFields, ", ")))
			}
		}
	}
	if _, ok := t.Fields["service"]; !ok && t.Static["service"] == "" {
		errs = append(errs, errors.New("template: service needs a path in fields or a value in static"))
	}
	return errors.Join(errs...)
}

// Webhook is the generic change webhook's handler.
type Webhook struct {
	cfg WebhookConfig
	w   Writer
	log *slog.Logger
	now func() time.Time
}

// NewWebhook returns the handler of one generic webhook writing to w
// (a MergingWriter).
func NewWebhook(cfg WebhookConfig, w Writer, log *slog.Logger) (*Webhook, error) {
	if cfg.Name == "" {
		return nil, errors.New("webhook: a name is required")
	}
	if cfg.Template != nil {
		if err := CheckTemplate(cfg.Template); err != nil {
			return nil, fmt.Errorf("webhook %s: %w", cfg.Name, err)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Webhook{cfg: cfg, w: w, log: log.With("collector", "webhook", "webhook", cfg.Name), now: time.Now}, nil
}

// ServeHTTP receives one POST.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := ReadRequest(w, r, h.cfg.MaxBody)
	if !ok {
		return
	}
	if h.cfg.Secret != "" && !SecretEqual(SharedSecret(r), h.cfg.Secret.Reveal()) {
		Fail(w, http.StatusUnauthorized, "missing or wrong shared secret")
		return
	}
	cs, err := h.Decode(body)
	if err != nil {
		Fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if len(cs) == 0 {
		Ignore(w, "no change in the body")
		return
	}
	if err := h.w.Add(r.Context(), &event.Batch{Changes: cs}); err != nil {
		h.log.Error("cannot write changes", "err", err)
		Fail(w, http.StatusServiceUnavailable, "cannot write the changes now; retry")
		return
	}
	Accept(w, len(cs))
}

// Decode turns a body into changes, validated and with ids.
func (h *Webhook) Decode(body []byte) ([]event.Change, error) {
	var items []json.RawMessage
	if t := h.cfg.Template; t != nil && t.Items != "" {
		var doc any
		if err := unmarshal(body, &doc); err != nil {
			return nil, err
		}
		v, ok := lookup(doc, t.Items)
		if !ok {
			return nil, nil
		}
		arr, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("items: %s is not an array", t.Items)
		}
		for _, x := range arr {
			b, _ := json.Marshal(x)
			items = append(items, b)
		}
	} else if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
	} else {
		items = []json.RawMessage{body}
	}
	now := h.now().UTC()
	var out []event.Change
	var errs []error
	for i, raw := range items {
		c, err := h.change(raw, now)
		if err == nil {
			err = Validate(&c)
		}
		if err != nil {
			if len(items) > 1 {
				err = fmt.Errorf("item %d: %w", i, err)
			}
			errs = append(errs, err)
			continue
		}
		AssignID(&c)
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// changeShape is event.Change with a time that may be left out or given as
// Unix seconds or milliseconds.
type changeShape struct {
	event.Change
	Time json.RawMessage `json:"time"`
}

func (h *Webhook) change(raw []byte, now time.Time) (event.Change, error) {
	if h.cfg.Template == nil {
		var s changeShape
		if err := unmarshal(raw, &s); err != nil {
			return event.Change{}, err
		}
		c := s.Change
		t, err := timeValue(s.Time, now)
		if err != nil {
			return event.Change{}, err
		}
		c.Time = t
		if c.Source == "" {
			c.Source = h.cfg.Name
		}
		return c, nil
	}
	var doc any
	if err := unmarshal(raw, &doc); err != nil {
		return event.Change{}, err
	}
	t := h.cfg.Template
	vals := map[string]string{"kind": "deploy", "source": h.cfg.Name}
	for f, v := range t.Static {
		vals[f] = v
	}
	for f, path := range t.Fields {
		v, ok := lookup(doc, path)
		if !ok || v == nil {
			continue
		}
		s, err := scalar(v)
		if err != nil {
			return event.Change{}, fmt.Errorf("%s (%s): %w", f, path, err)
		}
		if s != "" {
			vals[f] = s
		}
	}
	c := event.Change{ID: vals["id"], Kind: event.ChangeKind(vals["kind"]), Service: vals["service"], Environment: vals["environment"],
		Version: vals["version"], PreviousVersion: vals["previous_version"], Commit: vals["commit"], Author: vals["author"],
		Title: vals["title"], URL: vals["url"], Source: vals["source"]}
	var err error
	if c.Time, err = ParseTime(vals["time"], now); err != nil {
		return event.Change{}, fmt.Errorf("time: %w", err)
	}
	for f, v := range vals {
		if name, ok := strings.CutPrefix(f, "attributes."); ok {
			if c.Attributes == nil {
				c.Attributes = map[string]string{}
			}
			c.Attributes[name] = v
		}
	}
	return c, nil
}

func unmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return errors.New("invalid JSON: more than one value")
	}
	return nil
}

// timeValue reads a JSON time: absent or null is now, a string is parsed
// by ParseTime, a number is Unix seconds or milliseconds.
func timeValue(raw json.RawMessage, now time.Time) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return now, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		t, err := ParseTime(s, now)
		if err != nil {
			return time.Time{}, fmt.Errorf("time: %w", err)
		}
		return t, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsNaN(f) {
		return time.Time{}, fmt.Errorf("time: want a string or a number, got %s", raw)
	}
	return unixTime(int64(f)), nil
}

// lookup follows a dotted path through decoded JSON.
func lookup(doc any, path string) (any, bool) {
	v := doc
	if path == "" {
		return v, true
	}
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// scalar writes a JSON scalar as a string.
func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", errors.New("is an object or an array, not a value")
}
