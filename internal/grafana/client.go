package grafana

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	goapi "github.com/grafana/grafana-openapi-client-go/client"
	"github.com/grafana/grafana-openapi-client-go/client/annotations"
	"github.com/grafana/grafana-openapi-client-go/client/dashboards"
	"github.com/grafana/grafana-openapi-client-go/models"
)

// annotation is what correlator shows in Grafana for one of its objects.
type annotation struct {
	// Key names the object: "change:ID" or "incident:ID".
	Key  string
	Time time.Time
	// TimeEnd is zero for a point annotation, the region's end otherwise.
	TimeEnd time.Time
	Text    string
	Tags    []string
}

// Keys of the annotation's data field: Grafana keeps data with the
// annotation and returns it from GET /api/annotations, which is how an
// annotation created just before a crash (its id never recorded in the
// store) is found again instead of duplicated.
const (
	dataKey  = "correlator_key"
	dataHash = "correlator_hash"
)

// client speaks Grafana's annotations and dashboards HTTP API through
// grafana-openapi-client-go. It adds nothing to a request but the scope;
// retries are the syncer's (at its next interval), so the library's own
// retry loop is left off.
type client struct {
	api          *goapi.GrafanaHTTPAPI
	dashboardUID string
	panelID      int64
	timeout      time.Duration
}

// newClient builds the client. token is only handed to the library, which
// sends it as "Authorization: Bearer"; it stays out of every error.
func newClient(cfg Config, token string, hc *http.Client) (*client, error) {
	u, err := cfg.endpoint()
	if err != nil {
		return nil, err
	}
	tc := &goapi.TransportConfig{
		Host:     u.Host,
		BasePath: strings.TrimSuffix(u.Path, "/") + "/api",
		Schemes:  []string{u.Scheme},
		APIKey:   token,
		OrgID:    cfg.OrgID,
		Client:   hc,
		// Debug would dump every request, Authorization header included,
		// to stderr; the library sets it from this field, overriding the
		// DEBUG and SWAGGER_DEBUG environment variables the runtime reads.
		Debug: false,
	}
	return &client{
		api:          goapi.NewHTTPClientWithConfig(nil, tc),
		dashboardUID: cfg.DashboardUID,
		panelID:      cfg.PanelID,
		timeout:      time.Duration(cfg.Timeout),
	}, nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// end is the timeEnd sent: a point annotation ends where it starts, as
// Grafana itself stores and returns it.
func end(a annotation) int64 {
	if a.TimeEnd.IsZero() {
		return ms(a.Time)
	}
	return ms(a.TimeEnd)
}

func data(key, hash string) map[string]any {
	return map[string]any{dataKey: key, dataHash: hash}
}

// create posts a new annotation and returns Grafana's id for it.
func (c *client) create(ctx context.Context, a annotation, hash string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	text := a.Text
	body := &models.PostAnnotationsCmd{
		DashboardUID: c.dashboardUID,
		PanelID:      c.panelID,
		Time:         ms(a.Time),
		TimeEnd:      end(a),
		Text:         &text,
		Tags:         a.Tags,
		Data:         data(a.Key, hash),
	}
	resp, err := c.api.Annotations.PostAnnotationWithParams(annotations.NewPostAnnotationParamsWithContext(ctx).WithBody(body))
	if err != nil {
		return 0, err
	}
	if resp.Payload == nil || resp.Payload.ID == nil || *resp.Payload.ID <= 0 {
		return 0, errors.New("grafana answered without an annotation id")
	}
	return *resp.Payload.ID, nil
}

// update replaces an annotation's time, text, tags and data (PUT): every
// field is sent, so nothing of an older version survives. Its scope
// (dashboard, panel) is not part of an update.
func (c *client) update(ctx context.Context, id int64, a annotation, hash string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body := &models.UpdateAnnotationsCmd{
		Time:    ms(a.Time),
		TimeEnd: end(a),
		Text:    a.Text,
		Tags:    a.Tags,
		Data:    data(a.Key, hash),
	}
	p := annotations.NewUpdateAnnotationParamsWithContext(ctx).WithAnnotationID(strconv.FormatInt(id, 10)).WithBody(body)
	_, err := c.api.Annotations.UpdateAnnotationWithParams(p)
	return err
}

// remove deletes an annotation; one already gone is not an error.
func (c *client) remove(ctx context.Context, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	p := annotations.NewDeleteAnnotationByIDParamsWithContext(ctx).WithAnnotationID(strconv.FormatInt(id, 10))
	if _, err := c.api.Annotations.DeleteAnnotationByIDWithParams(p); err != nil && !isStatus(err, http.StatusNotFound) {
		return err
	}
	return nil
}

// existing is one of correlator's annotations found in Grafana.
type existing struct {
	ID   int64
	Hash string
}

// find lists correlator's annotations in [from, to] in the configured scope,
// by the key in their data. Grafana returns at most limit of them.
func (c *client) find(ctx context.Context, from, to time.Time, limit int64) (map[string]existing, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	kind := "annotation"
	p := annotations.NewGetAnnotationsParamsWithContext(ctx).
		WithFrom(ptr(ms(from))).WithTo(ptr(ms(to))).
		WithTags([]string{tagCorrelator}).WithType(&kind).WithLimit(&limit)
	if c.dashboardUID != "" {
		p = p.WithDashboardUID(&c.dashboardUID)
	}
	if c.panelID != 0 {
		p = p.WithPanelID(&c.panelID)
	}
	resp, err := c.api.Annotations.GetAnnotations(p)
	if err != nil {
		return nil, err
	}
	out := map[string]existing{}
	for _, a := range resp.Payload {
		if a == nil {
			continue
		}
		// Data is whatever JSON Grafana kept; only our own keys matter.
		b, err := json.Marshal(a.Data)
		if err != nil {
			continue
		}
		var d struct {
			Key  string `json:"correlator_key"`
			Hash string `json:"correlator_hash"`
		}
		if json.Unmarshal(b, &d) != nil || d.Key == "" {
			continue
		}
		// Duplicates (from before this check existed) resolve to the
		// newest, which is the one most likely still shown as current.
		if old, ok := out[d.Key]; !ok || a.ID > old.ID {
			out[d.Key] = existing{ID: a.ID, Hash: d.Hash}
		}
	}
	return out, nil
}

// checkDashboard fails unless the configured dashboard exists and the token
// can read it: annotations posted to a missing dashboard are refused one by
// one, which would read as a Grafana outage.
func (c *client) checkDashboard(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err := c.api.Dashboards.GetDashboardByUIDWithParams(dashboards.NewGetDashboardByUIDParamsWithContext(ctx).WithUID(c.dashboardUID))
	switch {
	case err == nil:
		return nil
	case isStatus(err, http.StatusNotFound):
		return fmt.Errorf("grafana.dashboard_uid %q: no such dashboard", c.dashboardUID)
	}
	return fmt.Errorf("check dashboard %q: %w", c.dashboardUID, err)
}

func ptr[T any](v T) *T { return &v }

// statusError is what the library's errors carry when Grafana answered:
// each response type it knows, and runtime.APIError for the others.
type statusError interface {
	error
	IsCode(code int) bool
	IsClientError() bool
}

// isStatus reports whether Grafana answered err with the HTTP status code.
func isStatus(err error, code int) bool {
	var se statusError
	return errors.As(err, &se) && se.IsCode(code)
}

// unavailable reports whether err means Grafana cannot take any request
// now, so the rest of a sync should wait for the next one: no answer at
// all (refused, timed out), a server error, rate limiting, or a token it
// does not accept. Other client errors concern one annotation only.
func unavailable(err error) bool {
	var se statusError
	if !errors.As(err, &se) {
		return true
	}
	return !se.IsClientError() || se.IsCode(http.StatusTooManyRequests) ||
		se.IsCode(http.StatusUnauthorized) || se.IsCode(http.StatusForbidden)
}
