package otlplogs

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/ingest"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Limits, as ingest applies them to its own logs: identifiers are rejected
// when longer, because a cut identifier names something else; free text is
// cut, because a long stack trace is still worth keeping.
const (
	maxIdent    = 256
	maxText     = 64 << 10
	truncMarker = "…[truncated]"
	maxFuture   = 24 * time.Hour
)

// minTime is the earliest accepted timestamp: nothing correlator looks at is
// older, and it catches seconds or milliseconds sent as nanoseconds.
var minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// decodeRequest decodes a body of the given encoding. An empty body is an
// empty request, which OTLP says to answer with success.
func decodeRequest(body []byte, enc encoding) (*collogspb.ExportLogsServiceRequest, error) {
	req := &collogspb.ExportLogsServiceRequest{}
	if len(body) == 0 {
		return req, nil
	}
	if enc == encJSON {
		// OTLP/JSON receivers must ignore unknown fields.
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("decode OTLP/JSON ExportLogsServiceRequest: %s", protoErrText(err))
		}
		return req, nil
	}
	if err := proto.Unmarshal(body, req); err != nil {
		return nil, fmt.Errorf("decode protobuf ExportLogsServiceRequest: %s", protoErrText(err))
	}
	return req, nil
}

// protoErrText is the text of a protobuf decoding error. The protobuf
// module deliberately varies its messages between builds (a space or a
// no-break space after "proto:") so that nobody matches on them; clients
// read this text, so it gets the plain space.
func protoErrText(err error) string {
	return strings.ReplaceAll(err.Error(), "\u00a0", " ")
}

// recordError is one rejected log record.
type recordError struct {
	path   string // resourceLogs[0].scopeLogs[1].logRecords[2]
	field  string
	msg    string
	reason string // metric label: the field at fault
}

func (e recordError) Error() string {
	return e.path + ": field " + strconv.Quote(e.field) + ": " + e.msg
}

// rejectMessage is partial_success.error_message: the count and the first
// few rejections, enough to find the culprit without an unbounded message.
func rejectMessage(rs []recordError) string {
	const show = 5
	var b strings.Builder
	fmt.Fprintf(&b, "%d log records rejected: ", len(rs))
	for i, r := range rs {
		if i == show {
			fmt.Fprintf(&b, "; and %d more", len(rs)-show)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.Error())
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// converter maps one request to records. Field names in messages follow
// the request's encoding: lowerCamelCase for JSON, proto names otherwise.
type converter struct {
	cfg  *Config
	json bool
	now  time.Time
	h    idHasher
}

func (c *converter) name(proto, json string) string {
	if c.json {
		return json
	}
	return proto
}

func (c *converter) path(i, j, k int) string {
	if c.json {
		return fmt.Sprintf("resourceLogs[%d].scopeLogs[%d].logRecords[%d]", i, j, k)
	}
	return fmt.Sprintf("resource_logs[%d].scope_logs[%d].log_records[%d]", i, j, k)
}

// scopeCtx is what the records of one scope share.
type scopeCtx struct {
	service  string
	res      map[string]string // every resource attribute, for user lookups
	copied   map[string]string // the resource attributes copied into records
	scope    map[string]string
	name     string
	version  string
	sharedEr *recordError // set when the resource or scope itself is invalid
}

func (c *converter) convert(req *collogspb.ExportLogsServiceRequest) ([]event.LogRecord, []recordError) {
	var out []event.LogRecord
	var rejects []recordError
	for i, rl := range req.GetResourceLogs() {
		sc := scopeCtx{service: c.cfg.DefaultService}
		res, err := c.attrs(rl.GetResource().GetAttributes())
		if err != nil {
			sc.sharedEr = &recordError{field: c.name("resource.attributes", "resource.attributes"), msg: err.Error(), reason: "attributes"}
		}
		if v := res["service.name"]; v != "" {
			sc.service = v
		}
		if len(sc.service) > maxIdent && sc.sharedEr == nil {
			sc.sharedEr = &recordError{field: "service.name", msg: fmt.Sprintf("longer than %d bytes", maxIdent), reason: "service"}
		}
		sc.res, sc.copied = res, c.copyResource(res)
		for j, sl := range rl.GetScopeLogs() {
			scope := sl.GetScope()
			s := sc
			s.name, s.version = scope.GetName(), scope.GetVersion()
			var err error
			if s.scope, err = c.attrs(scope.GetAttributes()); err != nil && s.sharedEr == nil {
				s.sharedEr = &recordError{field: "scope.attributes", msg: err.Error(), reason: "attributes"}
			}
			for k, lr := range sl.GetLogRecords() {
				if s.sharedEr != nil {
					e := *s.sharedEr
					e.path = c.path(i, j, k)
					rejects = append(rejects, e)
					continue
				}
				rec, rerr := c.record(lr, &s)
				if rerr != nil {
					rerr.path = c.path(i, j, k)
					rejects = append(rejects, *rerr)
					continue
				}
				out = append(out, rec)
			}
		}
	}
	return out, rejects
}

// copyResource selects the resource attributes records carry. service.name
// is left out: it is the record's service already.
func (c *converter) copyResource(res map[string]string) map[string]string {
	keys := c.cfg.ResourceAttributes
	out := make(map[string]string, len(res))
	switch {
	case len(keys) == 1 && keys[0] == "-":
		return out
	case len(keys) == 0:
		for k, v := range res {
			out[k] = v
		}
	default:
		for _, k := range keys {
			if v, ok := res[k]; ok {
				out[k] = v
			}
		}
	}
	delete(out, "service.name")
	return out
}

func (c *converter) record(lr *logspb.LogRecord, s *scopeCtx) (event.LogRecord, *recordError) {
	var rec event.LogRecord
	ns, field := lr.GetTimeUnixNano(), c.name("time_unix_nano", "timeUnixNano")
	if ns == 0 {
		ns, field = lr.GetObservedTimeUnixNano(), c.name("observed_time_unix_nano", "observedTimeUnixNano")
	}
	t, msg := c.time(ns)
	if msg != "" {
		if ns == 0 {
			field = c.name("time_unix_nano", "timeUnixNano")
			msg = "no timestamp: " + field + " and " + c.name("observed_time_unix_nano", "observedTimeUnixNano") + " are both 0"
		}
		return rec, &recordError{field: field, msg: msg, reason: "time"}
	}
	trace, msg := c.id(lr.GetTraceId(), 16)
	if msg != "" {
		return rec, &recordError{field: c.name("trace_id", "traceId"), msg: msg, reason: "trace_id"}
	}
	span, msg := c.id(lr.GetSpanId(), 8)
	if msg != "" {
		return rec, &recordError{field: c.name("span_id", "spanId"), msg: msg, reason: "span_id"}
	}
	logAttrs, err := c.attrs(lr.GetAttributes())
	if err != nil {
		return rec, &recordError{field: "attributes", msg: err.Error(), reason: "attributes"}
	}
	// Most specific wins: resource, then scope, then the record's own.
	attrs := make(map[string]string, len(s.copied)+len(s.scope)+len(logAttrs)+3)
	for _, m := range []map[string]string{s.copied, s.scope, logAttrs} {
		for k, v := range m {
			attrs[k] = v
		}
	}
	if s.name != "" {
		attrs["otel.scope.name"] = truncateText(s.name)
	}
	if s.version != "" {
		attrs["otel.scope.version"] = truncateText(s.version)
	}
	if n := lr.GetEventName(); n != "" {
		attrs["event.name"] = truncateText(n)
	}
	rec = event.LogRecord{
		Time:       t,
		Service:    s.service,
		Severity:   severity(int32(lr.GetSeverityNumber()), lr.GetSeverityText()),
		Body:       truncateText(anyText(lr.GetBody())),
		TraceID:    trace,
		SpanID:     span,
		UserID:     lookup(c.cfg.UserAttributes, logAttrs, s.scope, s.res),
		CustomerID: lookup(c.cfg.CustomerAttributes, logAttrs, s.scope, s.res),
		Attributes: attrs,
	}
	if len(rec.UserID) > maxIdent || len(rec.CustomerID) > maxIdent {
		return event.LogRecord{}, &recordError{field: "attributes", msg: fmt.Sprintf("user or customer id longer than %d bytes", maxIdent), reason: "attributes"}
	}
	if len(attrs) == 0 {
		rec.Attributes = nil
	}
	rec.ID = c.h.log(&rec)
	return rec, nil
}

// time checks a nanosecond timestamp against the accepted range; the
// message names the likely unit mistake.
func (c *converter) time(ns uint64) (time.Time, string) {
	if ns == 0 {
		return time.Time{}, "no timestamp"
	}
	if ns > math.MaxInt64 {
		return time.Time{}, fmt.Sprintf("%d is out of range for Unix nanoseconds", ns)
	}
	t := time.Unix(0, int64(ns)).UTC()
	if t.Before(minTime) {
		msg := fmt.Sprintf("%d is before 2000-01-01 as Unix nanoseconds", ns)
		if ms := time.UnixMilli(int64(ns)); !ms.Before(minTime) && !ms.After(c.now.Add(maxFuture)) {
			msg += "; it looks like Unix milliseconds"
		} else if s := time.Unix(int64(ns), 0); !s.Before(minTime) && !s.After(c.now.Add(maxFuture)) {
			msg += "; it looks like Unix seconds"
		}
		return time.Time{}, msg
	}
	if t.After(c.now.Add(maxFuture)) {
		return time.Time{}, fmt.Sprintf("%s is more than 24h in the future", t.Format(time.RFC3339Nano))
	}
	return t, ""
}

// id renders a trace (size 16) or span (size 8) id as lower-case hex; an
// empty or all-zero id is no id.
//
// OTLP/JSON writes these ids in hex where protojson expects base64. Hex
// digits are all base64 digits, and 2n hex digits are exactly 3n/2 bytes of
// base64 with no padding, so protojson decodes a valid hex id without
// complaint into 24 (12) bytes that re-encode to the original text: the
// hex is recovered from that text. This spares a second parse of the body.
func (c *converter) id(b []byte, size int) (string, string) {
	if c.json && len(b) > 0 {
		digits := 2 * size
		if len(b) != digits*3/4 {
			return "", fmt.Sprintf("must be %d hex digits", digits)
		}
		raw, err := hex.DecodeString(base64.StdEncoding.EncodeToString(b))
		if err != nil {
			return "", fmt.Sprintf("must be %d hex digits", digits)
		}
		b = raw
	}
	if len(b) == 0 {
		return "", ""
	}
	if len(b) != size {
		return "", fmt.Sprintf("must be %d bytes, got %d", size, len(b))
	}
	for _, x := range b {
		if x != 0 {
			return hex.EncodeToString(b), ""
		}
	}
	return "", ""
}

// attrs flattens key-value pairs to strings. A later duplicate key wins;
// pairs without a value are dropped, as ingest drops null attributes.
func (c *converter) attrs(kvs []*commonpb.KeyValue) (map[string]string, error) {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if len(kv.GetKey()) > maxIdent {
			return nil, fmt.Errorf("key %q... longer than %d bytes", strings.ToValidUTF8(kv.GetKey()[:32], ""), maxIdent)
		}
		if kv.GetValue().GetValue() == nil {
			continue
		}
		m[kv.GetKey()] = truncateText(anyText(kv.GetValue()))
	}
	return m, nil
}

// lookup returns the value of the first key found, each key looked up in
// the record's, the scope's, then the resource's attributes.
func lookup(keys []string, maps ...map[string]string) string {
	for _, k := range keys {
		for _, m := range maps {
			if v, ok := m[k]; ok && v != "" {
				return v
			}
		}
	}
	return ""
}

// severity maps an OpenTelemetry severity number (1-24) to its short name,
// falling back to the text and then to INFO.
func severity(n int32, text string) string {
	switch {
	case n >= 1 && n <= 4:
		return ingest.SeverityTrace
	case n >= 5 && n <= 8:
		return ingest.SeverityDebug
	case n >= 9 && n <= 12:
		return ingest.SeverityInfo
	case n >= 13 && n <= 16:
		return ingest.SeverityWarn
	case n >= 17 && n <= 20:
		return ingest.SeverityError
	case n >= 21 && n <= 24:
		return ingest.SeverityFatal
	}
	if s, ok := ingest.NormalizeSeverity(text); ok {
		return s
	}
	return ingest.SeverityInfo
}

// anyText renders a value as text: a string as is, anything else as the
// JSON text a structured log would show (bytes as base64).
func anyText(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case nil:
		return ""
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return string(appendFloat(nil, x.DoubleValue, false))
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	}
	return string(appendJSON(nil, v))
}

// appendJSON appends v as compact JSON.
func appendJSON(b []byte, v *commonpb.AnyValue) []byte {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return appendJSONString(b, x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		return strconv.AppendBool(b, x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.AppendInt(b, x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return appendFloat(b, x.DoubleValue, true)
	case *commonpb.AnyValue_BytesValue:
		return appendJSONString(b, base64.StdEncoding.EncodeToString(x.BytesValue))
	case *commonpb.AnyValue_ArrayValue:
		b = append(b, '[')
		for i, e := range x.ArrayValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case *commonpb.AnyValue_KvlistValue:
		b = append(b, '{')
		for i, kv := range x.KvlistValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, kv.GetKey())
			b = append(b, ':')
			b = appendJSON(b, kv.GetValue())
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

// appendFloat formats f as encoding/json does. JSON has no NaN or
// infinities: inside JSON text they are quoted strings.
func appendFloat(b []byte, f float64, quoted bool) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		s := "NaN"
		if math.IsInf(f, 1) {
			s = "Infinity"
		} else if math.IsInf(f, -1) {
			s = "-Infinity"
		}
		if quoted {
			return appendJSONString(b, s)
		}
		return append(b, s...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 becomes 1e-7, as in encoding/json.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString appends s as a JSON string, without encoding/json's HTML
// escaping (log text is not headed for a browser) and with invalid UTF-8
// replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// truncateText cuts s to maxText bytes, marker included, on a rune boundary.
func truncateText(s string) string {
	if len(s) <= maxText {
		return s
	}
	n := maxText - len(truncMarker)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + truncMarker
}

// idVersion tags the derived-id encoding; changing the encoding changes
// every id, so bump it if you must.
const idVersion = "correlator.otlplogs.id.v1"

// idHasher derives a record id from its content: 32 hex digits of SHA-256
// over the fields, each length-prefixed so that no two different records
// share an input, attributes in key order. Not safe for concurrent use.
type idHasher struct {
	buf  []byte
	keys []string
}

func (h *idHasher) log(l *event.LogRecord) string {
	field := func(b []byte, s string) []byte {
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	b := field(h.buf[:0], idVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(l.Time.UnixNano()))
	for _, s := range [...]string{l.Service, l.Severity, l.Body, l.UserID, l.CustomerID, l.TraceID, l.SpanID} {
		b = field(b, s)
	}
	h.keys = h.keys[:0]
	for k := range l.Attributes {
		h.keys = append(h.keys, k)
	}
	slices.Sort(h.keys)
	b = binary.AppendUvarint(b, uint64(len(h.keys)))
	for _, k := range h.keys {
		b = field(b, k)
		b = field(b, l.Attributes[k])
	}
	h.buf = b
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
