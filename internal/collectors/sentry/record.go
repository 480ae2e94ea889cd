package sentry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// Size limits, as internal/ingest applies them: identifiers are cut to
// maxIdent, types and attribute values to maxValue, free text to maxText.
const (
	maxIdent    = 256
	maxValue    = 4 << 10
	maxText     = 64 << 10
	truncMarker = "…[truncated]"
)

// Attribute keys this package writes besides the event's tags.
const (
	AttrEventID     = "sentry.event_id"
	AttrProject     = "sentry.project"
	AttrIssueID     = "sentry.issue_id"
	AttrFrames      = "sentry.frames"
	AttrHandled     = "sentry.handled"
	AttrPlatform    = "sentry.platform"
	AttrSDK         = "sentry.sdk"
	AttrTransaction = "sentry.transaction"
	AttrServerName  = "server_name"
	AttrUserEmail   = "user.email"
	AttrUserIP      = "user.ip_address"
	AttrUserName    = "user.username"
	AttrFlagPrefix  = "flag."
)

// skippedTags are tags that are not copied into attributes: the ones that
// repeat a field of the record (Sentry's API and webhooks add them), and
// Sentry's "user" tag ("ip:203.0.113.9", "email:..."), which would carry the
// raw user past the hashing.
var skippedTags = map[string]bool{
	"environment": true, "release": true, "level": true, "dist": true,
	"user": true, "sentry:user": true, "sentry:release": true, "sentry:dist": true,
}

// mapper turns parsed events into records, applying the configuration.
type mapper struct {
	cfg      Config
	projects map[string]*Project
}

func newMapper(cfg Config) *mapper {
	m := &mapper{cfg: cfg, projects: map[string]*Project{}}
	for i := range cfg.Projects {
		m.projects[cfg.Projects[i].ID] = &cfg.Projects[i]
	}
	return m
}

// origin says where a payload came from, for what the payload itself may
// not say.
type origin struct {
	// project is the project id the transport names (the intake's URL, the
	// Poller's project); when set it wins over the payload's.
	project string
	// eventID is the envelope header's event_id, used when the payload
	// has none.
	eventID string
	// fallbackTime dates an event without a timestamp: the envelope's
	// sent_at, or the time of receipt.
	fallbackTime time.Time
	// now bounds timestamps from above.
	now time.Time
}

// toRecord maps a payload to an error record. The id is derived from the
// event id alone, so the intake, the webhook and the Poller give one event
// the same id and the store keeps one copy; a payload without an event id
// gets one derived from its bytes, which only collapses exact replays.
func (m *mapper) toRecord(payload []byte, o origin) (event.ErrorEvent, error) {
	p, err := parseEvent(payload)
	if err != nil {
		return event.ErrorEvent{}, err
	}
	return m.record(p, payload, o)
}

func (m *mapper) record(p *parsedEvent, payload []byte, o origin) (event.ErrorEvent, error) {
	var e event.ErrorEvent
	projectID := o.project
	if projectID == "" {
		projectID = p.Project
	}
	proj := m.projects[projectID]
	if proj == nil {
		if projectID == "" {
			return e, fmt.Errorf("%w: %w", errUnknownProject, fieldErr("project", "missing"))
		}
		return e, fmt.Errorf("%w: %w", errUnknownProject, fieldErr("project", "project %s is not configured", cut(projectID, 32)))
	}
	eventID := p.EventID
	if eventID == "" {
		eventID, _ = normalizeEventID(o.eventID)
	}
	if eventID != "" {
		e.ID = deriveID("event", eventID)
	} else {
		e.ID = deriveID("payload", string(payload))
	}

	e.Time = p.Time
	if !p.HasTime {
		e.Time = o.fallbackTime.UTC().Truncate(time.Millisecond)
	}
	if e.Time.Before(minTime) || e.Time.After(o.now.Add(24*time.Hour)) {
		return e, fieldErr("timestamp", "%s is before 2000 or more than a day ahead of this server's clock", e.Time.Format(time.RFC3339))
	}

	// Service: the tag, the project, then the host, in that order.
	if t := m.cfg.ServiceTag; t != "" {
		e.Service = p.Tags[t]
	}
	if e.Service == "" {
		e.Service = proj.Service
	}
	if e.Service == "" && m.cfg.ServiceFromServerName {
		e.Service = p.ServerName
	}
	if e.Service == "" {
		return e, fmt.Errorf("%w: %w", errNoService, fieldErr("tags", "project %s has no service and the event names none (service_tag %q, server_name)", proj.ID, m.cfg.ServiceTag))
	}
	if len(e.Service) > maxIdent {
		return e, fieldErr("service", "longer than %d bytes", maxIdent)
	}

	e.Environment = cut(p.Environment, maxIdent)
	e.Release = cut(p.Release, maxIdent)
	e.Level = p.Level
	if e.Level == "" {
		e.Level = "error"
	}
	e.TraceID = p.TraceID
	for _, t := range m.cfg.CustomerTags {
		if v := p.Tags[t]; v != "" {
			e.CustomerID = cut(v, maxIdent)
			break
		}
	}

	// The primary exception is the last one: the protocol lists a chain
	// oldest to newest.
	var primary *exception
	if n := len(p.Exceptions); n > 0 {
		primary = &p.Exceptions[n-1]
		e.Type = cut(primary.Type, maxValue)
		e.Message = primary.Value
	}
	if e.Message == "" {
		e.Message = p.Message
	}
	e.Message = cutText(e.Message, maxText)
	frames := topFrames(p.Exceptions, m.cfg.MaxFrames)

	e.SampleRate = proj.SampleRate
	if t := m.cfg.SampleRateTag; t != "" {
		if v := p.Tags[t]; v != "" {
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || !(r > 0 && r <= 1) {
				return e, fieldErr("tags."+t, "sample rate %q is not a number in (0, 1]", cut(v, 32))
			}
			e.SampleRate = r
		}
	}

	attrs := make(map[string]string, len(p.Tags)+len(p.Flags)+8)
	for _, k := range p.TagOrder {
		if skippedTags[k] || len(k) > maxIdent {
			continue
		}
		attrs[k] = cut(p.Tags[k], maxValue)
	}
	for k, v := range p.Flags {
		if len(k)+len(AttrFlagPrefix) <= maxIdent {
			attrs[AttrFlagPrefix+k] = cut(v, maxValue)
		}
	}
	set := func(k, v string) {
		if v != "" {
			attrs[k] = cut(v, maxValue)
		}
	}
	set(AttrProject, proj.ID)
	set(AttrEventID, eventID)
	set(AttrIssueID, p.IssueID)
	set(AttrPlatform, p.Platform)
	set(AttrSDK, p.SDK)
	set(AttrTransaction, p.Transaction)
	set(AttrServerName, p.ServerName)
	if primary != nil && primary.Mechanism != nil && primary.Mechanism.Handled != nil {
		set(AttrHandled, strconv.FormatBool(*primary.Mechanism.Handled))
	}
	if len(frames) > 0 {
		lines := make([]string, len(frames))
		for i := range frames {
			lines[i] = frames[i].String()
		}
		set(AttrFrames, strings.Join(lines, "\n"))
	}
	m.setUser(&e, attrs, p.User)
	if len(attrs) > 0 {
		e.Attributes = attrs
	}

	synthetic := primary != nil && primary.Mechanism != nil && primary.Mechanism.Synthetic != nil && *primary.Mechanism.Synthetic
	e.Fingerprint = fingerprint(e.Service, p.Fingerprint, e.Type, e.Message, synthetic, frames)
	return e, nil
}

// setUser fills the user id and the user attributes, hashed unless the
// config keeps them raw. The user id is the first of id, email, IP address
// and username the event has; hashed values are prefixed by their kind
// before hashing, so that an id and an email that happen to be equal stay
// two users.
func (m *mapper) setUser(e *event.ErrorEvent, attrs map[string]string, u user) {
	val := func(kind, v string) string {
		if v == "" || m.cfg.KeepRawUser {
			return cut(v, maxIdent)
		}
		return m.hashUser(kind, v)
	}
	for _, c := range []struct{ kind, v string }{{"id", u.ID}, {"email", u.Email}, {"ip", u.IPAddress}, {"username", u.Username}} {
		if c.v != "" {
			e.UserID = val(c.kind, c.v)
			break
		}
	}
	if v := val("email", u.Email); v != "" {
		attrs[AttrUserEmail] = v
	}
	if v := val("ip", u.IPAddress); v != "" {
		attrs[AttrUserIP] = v
	}
	if v := val("username", u.Username); v != "" {
		attrs[AttrUserName] = v
	}
}

// hashUser is HMAC-SHA256(salt, kind ":" value), 32 hex digits.
func (m *mapper) hashUser(kind, v string) string {
	h := hmac.New(sha256.New, []byte(m.cfg.UserSalt.Reveal()))
	h.Write([]byte(kind))
	h.Write([]byte{':'})
	h.Write([]byte(v))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// deriveID is 32 hex digits of SHA-256 over a version tag, what the id is
// derived from, and the value. Changing it changes every id: bump the tag.
func deriveID(kind, v string) string {
	h := sha256.New()
	h.Write([]byte("correlator.sentry.id.v1\x00"))
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(v))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// topFrames returns up to n frames, innermost first, of the newest
// exception that has a stack trace: its in-app frames, or all its frames
// when none is marked in-app.
func topFrames(excs []exception, n int) []frame {
	if n <= 0 {
		return nil
	}
	for i := len(excs) - 1; i >= 0; i-- {
		st := excs[i].Stacktrace
		if st == nil || len(st.Frames) == 0 {
			continue
		}
		var out []frame
		for j := len(st.Frames) - 1; j >= 0 && len(out) < n; j-- {
			if st.Frames[j].inApp() {
				out = append(out, st.Frames[j])
			}
		}
		if len(out) == 0 {
			for j := len(st.Frames) - 1; j >= 0 && len(out) < n; j-- {
				out = append(out, st.Frames[j])
			}
		}
		return out
	}
	return nil
}
