package postmortem

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Handler serves bundles over HTTP. Register its two handlers on a
// ServeMux, behind the read scope:
//
//	GET /api/v1/incidents/{id}/postmortem   h.Bundle()  (?format=json|md|html, default json)
//	GET /incidents/{id}                     h.Live()    (the HTML page)
//
// Both read the {id} path value.
type Handler struct {
	b       *Builder
	refresh time.Duration
	log     *slog.Logger
	now     func() time.Time

	// The live page is built at most once per incident per refresh: every
	// open tab reloads it, and a build is some thirty queries and the
	// charts. flights makes concurrent requests for one incident share a
	// build; pages keeps the result for refresh, for at most maxPages
	// incidents (the oldest built goes first).
	flights  singleflight.Group
	mu       sync.Mutex
	pages    map[string]livePage
	maxPages int
}

// livePage is a rendered live page and when it was built.
type livePage struct {
	body  []byte
	built time.Time
}

// DefaultRefresh is how often the live page of an open incident reloads.
const DefaultRefresh = 30 * time.Second

// maxLivePages bounds the live pages kept; 256 pages are a few MB.
const maxLivePages = 256

// liveBuildTimeout bounds a shared build of a live page when the request
// that started it has no deadline of its own.
const liveBuildTimeout = time.Minute

// NewHandler returns a Handler building bundles with b. The live page of
// an open incident reloads every refresh (DefaultRefresh when 0); a
// resolved incident's page does not reload. Either is rebuilt at most
// once per refresh.
func NewHandler(b *Builder, refresh time.Duration, log *slog.Logger) *Handler {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{b: b, refresh: refresh, log: log.With("component", "postmortem"), now: time.Now,
		pages: map[string]livePage{}, maxPages: maxLivePages}
}

// maxIDLen bounds an incident id from a path: ids are short hashes or
// names, and anything longer is not one.
const maxIDLen = 256

func incidentID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	switch {
	case id == "":
		return "", errors.New(`invalid parameter "id": empty`)
	case len(id) > maxIDLen:
		return "", fmt.Errorf(`invalid parameter "id": longer than %d bytes`, maxIDLen)
	case strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", errors.New(`invalid parameter "id": control characters`)
	}
	return id, nil
}

// ContentSecurityPolicy is what an HTML bundle needs and all it may do:
// its inline style sheet and style attributes, inline SVG charts, a data:
// favicon; no script, no fetch, no form.
const ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

// htmlHeaders are the headers of an HTML bundle. The live page may be
// opened with a signed link whose signature is in the query string: no
// Referer may carry it to the change, Grafana or Sentry links.
func htmlHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
}

// Bundle serves GET /api/v1/incidents/{id}/postmortem. JSON comes in the
// API's envelope ({"status": "success", "data": bundle}); md and html are
// the documents themselves. Errors are always the JSON envelope.
func (h *Handler) Bundle() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := r.URL.Query().Get("format")
		if format == "" {
			format = FormatJSON
		}
		if !slices.Contains(Formats, format) {
			writeError(w, http.StatusBadRequest, "bad_data", fmt.Sprintf("invalid parameter \"format\": %q is not one of %s", format, strings.Join(Formats, ", ")))
			return
		}
		id, err := incidentID(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_data", err.Error())
			return
		}
		b, err := h.b.Build(r.Context(), id)
		if err != nil {
			h.buildFailed(w, id, err, false)
			return
		}
		var buf bytes.Buffer
		switch format {
		case FormatJSON:
			w.Header().Set("Content-Type", "application/json")
			err = json.NewEncoder(&buf).Encode(struct {
				Status string  `json:"status"`
				Data   *Bundle `json:"data"`
			}{"success", b})
		case FormatMarkdown:
			w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
			err = Markdown(&buf, b, RenderOptions{})
		case FormatHTML:
			htmlHeaders(w)
			err = HTML(&buf, b, RenderOptions{})
		}
		h.finish(w, r, buf.Bytes(), err)
	})
}

// renderError is a bundle built but not rendered: a fault of ours, not
// of the store.
type renderError struct{ error }

// Live serves GET /incidents/{id}: the HTML bundle, reloading itself
// while the incident is open so that one shared link stays current.
func (h *Handler) Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := incidentID(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if page, ok := h.cached(id); ok {
			htmlHeaders(w)
			h.finish(w, r, page, nil)
			return
		}
		ch := h.flights.DoChan(id, func() (any, error) {
			// A flight that ended just before this one began may have
			// built it.
			if page, ok := h.cached(id); ok {
				return page, nil
			}
			// The build is shared: it must not end when the request that
			// happened to start it goes away, only at its deadline.
			ctx := context.WithoutCancel(r.Context())
			var cancel context.CancelFunc
			if dl, ok := r.Context().Deadline(); ok {
				ctx, cancel = context.WithDeadline(ctx, dl)
			} else {
				ctx, cancel = context.WithTimeout(ctx, liveBuildTimeout)
			}
			defer cancel()
			return h.buildLive(ctx, id)
		})
		var res singleflight.Result
		select {
		case res = <-ch:
		case <-r.Context().Done():
			http.Error(w, "request timed out", http.StatusGatewayTimeout)
			return
		}
		var rerr renderError
		switch {
		case errors.As(res.Err, &rerr):
			h.finish(w, r, nil, rerr.error)
		case res.Err != nil:
			h.buildFailed(w, id, res.Err, true)
		default:
			htmlHeaders(w)
			h.finish(w, r, res.Val.([]byte), nil)
		}
	})
}

// buildLive builds and renders the live page of id, and keeps it.
func (h *Handler) buildLive(ctx context.Context, id string) ([]byte, error) {
	b, err := h.b.Build(ctx, id)
	if err != nil {
		return nil, err
	}
	opt := RenderOptions{}
	if b.Live {
		opt.Refresh = h.refresh
	}
	var buf bytes.Buffer
	if err := HTML(&buf, b, opt); err != nil {
		return nil, renderError{err}
	}
	h.keep(id, buf.Bytes())
	return buf.Bytes(), nil
}

// cached returns the live page of id built less than refresh ago.
func (h *Handler) cached(id string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.pages[id]
	if !ok || h.now().Sub(p.built) >= h.refresh {
		return nil, false
	}
	return p.body, true
}

// keep stores the live page of id, making room when the cache is full:
// the stale pages go, then the oldest.
func (h *Handler) keep(id string, body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if _, ok := h.pages[id]; !ok && len(h.pages) >= h.maxPages {
		oldest := ""
		for k, p := range h.pages {
			if now.Sub(p.built) >= h.refresh {
				delete(h.pages, k)
				continue
			}
			if oldest == "" || p.built.Before(h.pages[oldest].built) {
				oldest = k
			}
		}
		if len(h.pages) >= h.maxPages {
			delete(h.pages, oldest)
		}
	}
	h.pages[id] = livePage{body: body, built: now}
}

// buildFailed answers a failed build: in the API's envelope, or as text
// for the page.
func (h *Handler) buildFailed(w http.ResponseWriter, id string, err error, page bool) {
	fail := func(code int, typ, msg string) {
		if page {
			http.Error(w, msg, code)
			return
		}
		writeError(w, code, typ, msg)
	}
	switch {
	case errors.Is(err, ErrUnknownIncident):
		fail(http.StatusNotFound, "not_found", fmt.Sprintf("unknown incident %q", id))
	case errors.Is(err, context.DeadlineExceeded):
		fail(http.StatusGatewayTimeout, "timeout", "request timed out")
	default:
		h.log.Error("build post-mortem bundle", "incident_id", id, "err", err)
		fail(http.StatusServiceUnavailable, "unavailable", "cannot read the incident; see the server log")
	}
}

// finish writes a rendered document, or the rendering's failure.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, doc []byte, err error) {
	if err != nil {
		h.log.Error("render post-mortem bundle", "path", r.URL.Path, "err", err)
		for _, k := range []string{"Content-Type", "Content-Security-Policy", "Referrer-Policy"} {
			w.Header().Del(k)
		}
		writeError(w, http.StatusInternalServerError, "internal", "cannot render the bundle; see the server log")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Write(doc)
}

// writeError answers in the API's envelope.
func writeError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": typ, "error": msg})
}
