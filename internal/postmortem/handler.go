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
	"time"
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
}

// DefaultRefresh is how often the live page of an open incident reloads.
const DefaultRefresh = 30 * time.Second

// NewHandler returns a Handler building bundles with b. The live page of
// an open incident reloads every refresh (DefaultRefresh when 0); a
// resolved incident's page does not reload.
func NewHandler(b *Builder, refresh time.Duration, log *slog.Logger) *Handler {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{b: b, refresh: refresh, log: log.With("component", "postmortem")}
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
		b, ok := h.build(w, r, false)
		if !ok {
			return
		}
		var buf bytes.Buffer
		var err error
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
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			err = HTML(&buf, b, RenderOptions{})
		}
		h.finish(w, r, &buf, err)
	})
}

// Live serves GET /incidents/{id}: the HTML bundle, reloading itself
// while the incident is open so that one shared link stays current.
func (h *Handler) Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := h.build(w, r, true)
		if !ok {
			return
		}
		opt := RenderOptions{}
		if b.Live {
			opt.Refresh = h.refresh
		}
		var buf bytes.Buffer
		err := HTML(&buf, b, opt)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		h.finish(w, r, &buf, err)
	})
}

// build builds the bundle of the request's incident, or answers the error.
func (h *Handler) build(w http.ResponseWriter, r *http.Request, page bool) (*Bundle, bool) {
	fail := func(code int, typ, msg string) {
		if page {
			http.Error(w, msg, code)
			return
		}
		writeError(w, code, typ, msg)
	}
	id, err := incidentID(r)
	if err != nil {
		fail(http.StatusBadRequest, "bad_data", err.Error())
		return nil, false
	}
	b, err := h.b.Build(r.Context(), id)
	switch {
	case errors.Is(err, ErrUnknownIncident):
		fail(http.StatusNotFound, "not_found", fmt.Sprintf("unknown incident %q", id))
		return nil, false
	case errors.Is(err, context.DeadlineExceeded):
		fail(http.StatusGatewayTimeout, "timeout", "request timed out")
		return nil, false
	case err != nil:
		h.log.Error("build post-mortem bundle", "incident_id", id, "err", err)
		fail(http.StatusServiceUnavailable, "unavailable", "cannot read the incident; see the server log")
		return nil, false
	}
	return b, true
}

// finish writes a rendered document, or the rendering's failure.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer, err error) {
	if err != nil {
		h.log.Error("render post-mortem bundle", "path", r.URL.Path, "err", err)
		w.Header().Del("Content-Type")
		writeError(w, http.StatusInternalServerError, "internal", "cannot render the bundle; see the server log")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// writeError answers in the API's envelope.
func writeError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": typ, "error": msg})
}
