package sentry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError is a problem with one field of an event payload. Field is a
// dotted path into the payload (exception.values[1].stacktrace.frames).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return "field " + e.Field + ": " + e.Msg
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// errNotError marks a payload that is valid but not an error event (a
// transaction sent to the store endpoint): it is ignored, not rejected.
var errNotError = errors.New("not an error event")

// errNoService is wrapped by the error of an event whose service cannot be
// told.
var errNoService = errors.New("no service")

// errUnknownProject is wrapped by the error of an event of a project that is
// not configured.
var errUnknownProject = errors.New("unknown project")

// rawEvent is the first decoding pass over an event payload. Three shapes
// arrive here: what SDKs send (the intake), what Sentry stores and sends in
// webhooks (tags as pairs, "datetime", numeric "project"), and what its REST
// API returns (camelCase names, "entries", tags as {key, value}). Fields whose
// type varies between them stay raw and are parsed with their name at hand,
// so that every error names its field.
type rawEvent struct {
	EventID     json.RawMessage `json:"event_id"`
	EventIDAPI  json.RawMessage `json:"eventID"`
	Type        json.RawMessage `json:"type"`
	Timestamp   json.RawMessage `json:"timestamp"`
	Datetime    json.RawMessage `json:"datetime"`
	DateCreated json.RawMessage `json:"dateCreated"`
	Level       json.RawMessage `json:"level"`
	Platform    json.RawMessage `json:"platform"`
	Release     json.RawMessage `json:"release"`
	Environment json.RawMessage `json:"environment"`
	ServerName  json.RawMessage `json:"server_name"`
	Transaction json.RawMessage `json:"transaction"`
	Message     json.RawMessage `json:"message"`
	LogEntry    json.RawMessage `json:"logentry"`
	Exception   json.RawMessage `json:"exception"`
	Entries     json.RawMessage `json:"entries"`
	Tags        json.RawMessage `json:"tags"`
	User        json.RawMessage `json:"user"`
	Contexts    json.RawMessage `json:"contexts"`
	Fingerprint json.RawMessage `json:"fingerprint"`
	SDK         json.RawMessage `json:"sdk"`
	Project     json.RawMessage `json:"project"`
	ProjectID   json.RawMessage `json:"projectID"`
	IssueID     json.RawMessage `json:"issue_id"`
	GroupID     json.RawMessage `json:"groupID"`
	Title       json.RawMessage `json:"title"`
}

// exception is one value of the exception interface.
type exception struct {
	Type       string      `json:"type"`
	Value      string      `json:"value"`
	Module     string      `json:"module"`
	Mechanism  *mechanism  `json:"mechanism"`
	Stacktrace *stacktrace `json:"stacktrace"`
}

type mechanism struct {
	Type      string `json:"type"`
	Handled   *bool  `json:"handled"`
	Synthetic *bool  `json:"synthetic"`
}

type stacktrace struct {
	Frames []frame `json:"frames"`
}

// frame is a stack frame. The REST API spells some names in camelCase; both
// spellings are read.
type frame struct {
	Function   string `json:"function"`
	Module     string `json:"module"`
	Filename   string `json:"filename"`
	AbsPath    string `json:"abs_path"`
	AbsPathAPI string `json:"absPath"`
	Lineno     *int64 `json:"lineno"`
	LinenoAPI  *int64 `json:"lineNo"`
	InApp      *bool  `json:"in_app"`
	InAppAPI   *bool  `json:"inApp"`
}

func (f *frame) inApp() bool {
	if f.InApp != nil {
		return *f.InApp
	}
	return f.InAppAPI != nil && *f.InAppAPI
}

func (f *frame) line() int64 {
	if f.Lineno != nil {
		return *f.Lineno
	}
	if f.LinenoAPI != nil {
		return *f.LinenoAPI
	}
	return 0
}

// key is what the fingerprint takes from a frame: where the code lives and
// what it is called, never the line, so that an edit elsewhere in the file
// does not split an issue.
func (f *frame) key() string {
	loc := f.Module
	if loc == "" {
		loc = f.Filename
	}
	return loc + "\x00" + f.Function
}

// String formats a frame for the sentry.frames attribute:
// "module.function (file:line)".
func (f *frame) String() string {
	var b strings.Builder
	if f.Module != "" {
		b.WriteString(f.Module)
		b.WriteByte('.')
	}
	if f.Function != "" {
		b.WriteString(f.Function)
	} else {
		b.WriteByte('?')
	}
	// The base name of an absolute path: the directory is the build
	// machine's and only makes the attribute long.
	file := f.Filename
	if file == "" {
		file = path.Base(f.AbsPath)
	}
	if file == "" || file == "." {
		file = path.Base(f.AbsPathAPI)
	}
	if file == "." {
		file = ""
	}
	if file != "" || f.line() != 0 {
		fmt.Fprintf(&b, " (%s:%d)", file, f.line())
	}
	return b.String()
}

// parsedEvent is an event payload with its fields checked and normalised,
// before the configuration (service, user hashing) is applied.
type parsedEvent struct {
	EventID     string // 32 lower-case hex digits, or "" when absent
	Time        time.Time
	HasTime     bool
	Level       string
	Platform    string
	Release     string
	Environment string
	ServerName  string
	Transaction string
	Message     string
	Exceptions  []exception
	Tags        map[string]string
	TagOrder    []string
	User        user
	TraceID     string
	Flags       map[string]string
	Fingerprint []string
	SDK         string
	Project     string
	IssueID     string
}

type user struct {
	ID, Email, IPAddress, Username string
}

// parseEvent decodes one event payload. A transaction (type "transaction")
// returns errNotError.
func parseEvent(payload []byte) (*parsedEvent, error) {
	var r rawEvent
	if err := json.Unmarshal(payload, &r); err != nil {
		return nil, jsonError("", err)
	}
	p := &parsedEvent{}
	typ, err := str("type", r.Type)
	if err != nil {
		return nil, err
	}
	if typ == "transaction" {
		return nil, errNotError
	}
	if p.EventID, err = eventIDField("event_id", r.EventID); err != nil {
		return nil, err
	}
	if p.EventID == "" {
		if p.EventID, err = eventIDField("eventID", r.EventIDAPI); err != nil {
			return nil, err
		}
	}
	// The webhook's "datetime" and the API's "dateCreated" are exact
	// strings; the webhook's float "timestamp" may have lost a microsecond.
	for _, t := range []struct {
		name string
		raw  json.RawMessage
	}{{"datetime", r.Datetime}, {"dateCreated", r.DateCreated}, {"timestamp", r.Timestamp}} {
		if isNull(t.raw) {
			continue
		}
		if p.Time, err = parseTime(t.name, t.raw); err != nil {
			return nil, err
		}
		p.HasTime = true
		break
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{
		{"level", r.Level, &p.Level}, {"platform", r.Platform, &p.Platform},
		{"environment", r.Environment, &p.Environment}, {"server_name", r.ServerName, &p.ServerName},
		{"transaction", r.Transaction, &p.Transaction},
	} {
		if *f.dst, err = str(f.name, f.raw); err != nil {
			return nil, err
		}
	}
	if p.Level != "" {
		lv, ok := normalizeLevel(p.Level)
		if !ok {
			return nil, fieldErr("level", "unknown level %q: want debug, info, warning, error or fatal", cut(p.Level, 32))
		}
		p.Level = lv
	}
	if p.Release, err = parseRelease(r.Release); err != nil {
		return nil, err
	}
	if p.Tags, p.TagOrder, err = parseTags(r.Tags); err != nil {
		return nil, err
	}
	if p.Exceptions, err = parseExceptions("exception", r.Exception); err != nil {
		return nil, err
	}
	if p.Message, err = parseMessage("message", r.Message); err != nil {
		return nil, err
	}
	if p.Message == "" {
		if p.Message, err = parseMessage("logentry", r.LogEntry); err != nil {
			return nil, err
		}
	}
	if err := parseEntries(r.Entries, p); err != nil {
		return nil, err
	}
	// Sentry's title ("ReferenceError: x is not defined") stands in for the
	// message of stored events that have neither exception nor message.
	if p.Message == "" && len(p.Exceptions) == 0 {
		if p.Message, err = str("title", r.Title); err != nil {
			return nil, err
		}
	}
	if p.User, err = parseUser(r.User); err != nil {
		return nil, err
	}
	if p.TraceID, p.Flags, err = parseContexts(r.Contexts); err != nil {
		return nil, err
	}
	if p.Fingerprint, err = parseFingerprint(r.Fingerprint); err != nil {
		return nil, err
	}
	if p.SDK, err = parseSDK(r.SDK); err != nil {
		return nil, err
	}
	if p.Project, err = scalar("project", r.Project); err != nil {
		return nil, err
	}
	if p.Project == "" {
		if p.Project, err = scalar("projectID", r.ProjectID); err != nil {
			return nil, err
		}
	}
	if p.IssueID, err = scalar("issue_id", r.IssueID); err != nil {
		return nil, err
	}
	if p.IssueID == "" {
		if p.IssueID, err = scalar("groupID", r.GroupID); err != nil {
			return nil, err
		}
	}
	// The API and webhooks carry environment and release as tags only.
	if p.Environment == "" {
		p.Environment = p.Tags["environment"]
	}
	if p.Release == "" {
		p.Release = p.Tags["release"]
	}
	if p.Level == "" {
		if lv, ok := normalizeLevel(p.Tags["level"]); ok {
			p.Level = lv
		}
	}
	if p.ServerName == "" {
		p.ServerName = p.Tags["server_name"]
	}
	return p, nil
}

// jsonError turns an encoding/json error into a FieldError under prefix.
func jsonError(prefix string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := te.Field
		if prefix != "" && f != "" {
			f = prefix + "." + f
		} else if prefix != "" {
			f = prefix
		}
		return fieldErr(f, "expected %s, got JSON %s", te.Type, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Field: prefix, Msg: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)}
	}
	return &FieldError{Field: prefix, Msg: "invalid JSON: " + err.Error()}
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// str decodes a string or null.
func str(field string, raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fieldErr(field, "expected a string, got %s", kindOf(raw))
	}
	return s, nil
}

// scalar decodes a string, number or boolean as text (numbers as written);
// null is "". Objects and arrays are errors.
func scalar(field string, raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return "", nil
	}
	switch raw[0] {
	case '"':
		return str(field, raw)
	case '{', '[':
		return "", fieldErr(field, "expected a string or number, got %s", kindOf(raw))
	}
	return string(raw), nil
}

// anyText renders any JSON value as a string: strings as themselves, other
// values as their compact JSON text.
func anyText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

func kindOf(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// normalizeEventID returns id as 32 lower-case hex digits; UUIDs with dashes
// are accepted, as the protocol allows.
func normalizeEventID(id string) (string, bool) {
	if len(id) == 36 && id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-' {
		id = id[:8] + id[9:13] + id[14:18] + id[19:23] + id[24:]
	}
	if len(id) != 32 {
		return "", false
	}
	b := []byte(id)
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			b[i] = c + 'a' - 'A'
		default:
			return "", false
		}
	}
	return string(b), true
}

func eventIDField(field string, raw json.RawMessage) (string, error) {
	s, err := str(field, raw)
	if err != nil || s == "" {
		return "", err
	}
	id, ok := normalizeEventID(s)
	if !ok {
		return "", fieldErr(field, "%q is not a UUID (32 hex digits)", cut(s, 40))
	}
	return id, nil
}

// Times must fall between minTime and a day past the receiver's clock; the
// same bounds as internal/ingest.
var minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// parseTime reads a Sentry timestamp: an RFC 3339 string (a missing zone
// means UTC) or a number of Unix seconds with a fraction. The result is cut
// to milliseconds, the store's precision, so that every path gives the
// same value for one event.
func parseTime(field string, raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	var t time.Time
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return t, fieldErr(field, "invalid string")
		}
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			if t, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC); err != nil {
				f, ferr := strconv.ParseFloat(s, 64)
				if ferr != nil {
					return t, fieldErr(field, "cannot parse %q: want RFC 3339 or Unix seconds", cut(s, 64))
				}
				return unixSeconds(field, f)
			}
		}
		return t.UTC().Truncate(time.Millisecond), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return t, fieldErr(field, "expected an RFC 3339 string or Unix seconds, got %s", kindOf(raw))
	}
	return unixSeconds(field, f)
}

func unixSeconds(field string, f float64) (time.Time, error) {
	if math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, fieldErr(field, "%v is not a time in Unix seconds", f)
	}
	// Round to microseconds first: 1566248777.677 is 1566248777.67699999...
	// as a float, and must not become .676.
	us := int64(math.Round(f * 1e6))
	return time.UnixMicro(us).UTC().Truncate(time.Millisecond), nil
}

func parseRelease(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return "", nil
	}
	if raw[0] == '{' { // the REST API's release object
		var r struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return "", jsonError("release", err)
		}
		return r.Version, nil
	}
	return str("release", raw)
}

// parseTags reads tags as an object, a list of [key, value] pairs (Sentry's
// stored form) or a list of {"key", "value"} objects (its REST API). Values
// that are not strings become their JSON text. order lists the keys as
// they came, for a stable choice among duplicates (the last one wins).
func parseTags(raw json.RawMessage) (map[string]string, []string, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return map[string]string{}, nil, nil
	}
	tags := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := tags[k]; !ok {
			order = append(order, k)
		}
		tags[k] = v
	}
	switch raw[0] {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, nil, jsonError("tags", err)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			set(k, anyText(m[k]))
		}
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, nil, jsonError("tags", err)
		}
		for i, el := range list {
			el = bytes.TrimSpace(el)
			f := fmt.Sprintf("tags[%d]", i)
			switch {
			case len(el) > 0 && el[0] == '[':
				var pair []json.RawMessage
				if err := json.Unmarshal(el, &pair); err != nil || len(pair) != 2 {
					return nil, nil, fieldErr(f, "expected a [key, value] pair")
				}
				k, err := str(f+"[0]", pair[0])
				if err != nil {
					return nil, nil, err
				}
				set(k, anyText(pair[1]))
			case len(el) > 0 && el[0] == '{':
				var kv struct {
					Key   json.RawMessage `json:"key"`
					Value json.RawMessage `json:"value"`
				}
				if err := json.Unmarshal(el, &kv); err != nil {
					return nil, nil, jsonError(f, err)
				}
				k, err := str(f+".key", kv.Key)
				if err != nil {
					return nil, nil, err
				}
				set(k, anyText(kv.Value))
			default:
				return nil, nil, fieldErr(f, "expected a [key, value] pair or a {key, value} object, got %s", kindOf(el))
			}
		}
	default:
		return nil, nil, fieldErr("tags", "expected an object or an array, got %s", kindOf(raw))
	}
	delete(tags, "")
	return tags, order, nil
}

// parseExceptions reads the exception interface: {"values": [...]} or a
// bare list.
func parseExceptions(field string, raw json.RawMessage) ([]exception, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return nil, nil
	}
	var list json.RawMessage
	switch raw[0] {
	case '{':
		var o struct {
			Values json.RawMessage `json:"values"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, jsonError(field, err)
		}
		field += ".values"
		list = bytes.TrimSpace(o.Values)
		if isNull(list) {
			return nil, nil
		}
	case '[':
		list = raw
	default:
		return nil, fieldErr(field, "expected an object with values or an array, got %s", kindOf(raw))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(list, &items); err != nil {
		return nil, fieldErr(field, "expected an array, got %s", kindOf(list))
	}
	out := make([]exception, 0, len(items))
	for i, it := range items {
		if isNull(it) {
			continue
		}
		var e exception
		if err := json.Unmarshal(it, &e); err != nil {
			return nil, jsonError(fmt.Sprintf("%s[%d]", field, i), err)
		}
		// The protocol discards an exception with neither type nor value.
		if e.Type == "" && e.Value == "" {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// parseMessage reads the message interface: a string, or an object with
// formatted and message (the template).
func parseMessage(field string, raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return "", nil
	}
	if raw[0] != '{' {
		return str(field, raw)
	}
	var m struct {
		Formatted json.RawMessage `json:"formatted"`
		Message   json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", jsonError(field, err)
	}
	s, err := str(field+".formatted", m.Formatted)
	if err != nil || s != "" {
		return s, err
	}
	return str(field+".message", m.Message)
}

// parseEntries reads the REST API's "entries": the exception and message
// interfaces under {"type", "data"}.
func parseEntries(raw json.RawMessage, p *parsedEvent) error {
	if isNull(raw) {
		return nil
	}
	var entries []struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &entries); err != nil {
		return jsonError("entries", err)
	}
	for i, e := range entries {
		f := fmt.Sprintf("entries[%d].data", i)
		switch e.Type {
		case "exception":
			if len(p.Exceptions) > 0 {
				continue
			}
			ex, err := parseExceptions(f, e.Data)
			if err != nil {
				return err
			}
			p.Exceptions = ex
		case "message":
			if p.Message != "" {
				continue
			}
			m, err := parseMessage(f, e.Data)
			if err != nil {
				return err
			}
			p.Message = m
		}
	}
	return nil
}

func parseUser(raw json.RawMessage) (user, error) {
	var u user
	if isNull(raw) {
		return u, nil
	}
	var r struct {
		ID        json.RawMessage `json:"id"`
		Email     json.RawMessage `json:"email"`
		IPAddress json.RawMessage `json:"ip_address"`
		Username  json.RawMessage `json:"username"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return u, jsonError("user", err)
	}
	var err error
	if u.ID, err = scalar("user.id", r.ID); err != nil {
		return u, err
	}
	if u.Email, err = str("user.email", r.Email); err != nil {
		return u, err
	}
	if u.IPAddress, err = str("user.ip_address", r.IPAddress); err != nil {
		return u, err
	}
	// "{{auto}}" asks Sentry to fill in the client's address, which the
	// intake does not do: it is not an address.
	if u.IPAddress == "{{auto}}" {
		u.IPAddress = ""
	}
	if u.Username, err = scalar("user.username", r.Username); err != nil {
		return u, err
	}
	return u, nil
}

// parseContexts takes the trace id (contexts.trace.trace_id) and the
// evaluated feature flags (contexts.flags.values) from the contexts; the
// other contexts are not read, so their shape never rejects an event.
func parseContexts(raw json.RawMessage) (traceID string, flags map[string]string, err error) {
	if isNull(raw) {
		return "", nil, nil
	}
	var ctx map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ctx); err != nil {
		return "", nil, fieldErr("contexts", "expected an object, got %s", kindOf(raw))
	}
	if t := ctx["trace"]; !isNull(t) {
		var tr struct {
			TraceID json.RawMessage `json:"trace_id"`
		}
		if err := json.Unmarshal(t, &tr); err != nil {
			return "", nil, jsonError("contexts.trace", err)
		}
		if traceID, err = str("contexts.trace.trace_id", tr.TraceID); err != nil {
			return "", nil, err
		}
		if traceID != "" && !isHex(traceID, 32) {
			return "", nil, fieldErr("contexts.trace.trace_id", "%q is not 32 hex digits", cut(traceID, 40))
		}
		traceID = strings.ToLower(traceID)
	}
	if f := ctx["flags"]; !isNull(f) {
		var fl struct {
			Values []struct {
				Flag   json.RawMessage `json:"flag"`
				Result json.RawMessage `json:"result"`
			} `json:"values"`
		}
		if err := json.Unmarshal(f, &fl); err != nil {
			return "", nil, jsonError("contexts.flags", err)
		}
		for i, v := range fl.Values {
			name, err := str(fmt.Sprintf("contexts.flags.values[%d].flag", i), v.Flag)
			if err != nil {
				return "", nil, err
			}
			if name == "" || isNull(v.Result) {
				continue
			}
			if flags == nil {
				flags = map[string]string{}
			}
			// Booleans are "true"/"false", the values the engine compares
			// with; variants (strings, numbers) are kept as text.
			flags[name] = anyText(v.Result)
		}
	}
	return traceID, flags, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func parseFingerprint(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fieldErr("fingerprint", "expected an array, got %s", kindOf(raw))
	}
	out := make([]string, 0, len(list))
	for i, el := range list {
		s, err := scalar(fmt.Sprintf("fingerprint[%d]", i), el)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSDK(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", jsonError("sdk", err)
	}
	if s.Name == "" {
		return "", nil
	}
	if s.Version == "" {
		return s.Name, nil
	}
	return s.Name + "/" + s.Version, nil
}

// normalizeLevel maps Sentry's levels and their common aliases onto debug,
// info, warning, error and fatal.
func normalizeLevel(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug", "trace":
		return "debug", true
	case "info", "log", "notice":
		return "info", true
	case "warning", "warn":
		return "warning", true
	case "error", "err":
		return "error", true
	case "fatal", "critical", "crit":
		return "fatal", true
	}
	return "", false
}

// cut returns s cut to n bytes on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// cutText cuts s to maxText bytes, marker included.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cut(s, n-len(truncMarker)) + truncMarker
}
