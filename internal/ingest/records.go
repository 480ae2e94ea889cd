package ingest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/correlator/correlator/internal/event"
)

// record decodes one NDJSON line or array element into the batch, or rejects
// it. Its error is emit's (or the context's): a bad record is no error here.
func (d *decoder) record(line int, b []byte) error {
	b = trimSpace(b)
	if len(b) == 0 {
		return nil // a blank line
	}
	if !valid(b) {
		l, msg := syntaxError(b)
		d.reject(line+l, "", msg)
		return nil
	}
	if b[0] != '{' {
		d.reject(line, "", "want a JSON object, got "+jsonType(b))
		return nil
	}
	d.unknown = d.unknown[:0]
	var fe *fieldError
	switch bt, n := d.batch, d.batchCap(); d.kind {
	case event.KindChanges:
		fe = decodeInto(&bt.Changes, n, d.change, b)
	case event.KindErrors:
		fe = decodeInto(&bt.Errors, n, d.errorEvent, b)
	case event.KindLogs:
		fe = decodeInto(&bt.Logs, n, d.log, b)
	case event.KindMetrics:
		fe = decodeInto(&bt.Metrics, n, d.metric, b)
	case event.KindServices:
		fe = decodeInto(&bt.Services, n, d.service, b)
	}
	if fe != nil {
		d.reject(line, fe.field, fe.msg)
		return nil
	}
	return d.added()
}

// change decodes a changes record into c.
func (d *decoder) change(c *event.Change, obj []byte) *fieldError {
	hasTime := false
	mem := newMembers(obj)
	for {
		key, val, ok := mem.next()
		if !ok {
			break
		}
		var fe *fieldError
		switch k := keyName(key); string(k) {
		case "id":
			c.ID, fe = d.str("id", val, maxIdent)
		case "time":
			c.Time, hasTime, fe = d.timeField("time", val)
		case "kind":
			var s string
			if s, fe = d.name("kind", val); fe == nil {
				c.Kind = event.ChangeKind(s)
			}
		case "service":
			c.Service, fe = d.name("service", val)
		case "environment":
			c.Environment, fe = d.name("environment", val)
		case "version":
			c.Version, fe = d.name("version", val)
		case "previous_version":
			c.PreviousVersion, fe = d.name("previous_version", val)
		case "commit":
			c.Commit, fe = d.str("commit", val, maxIdent)
		case "author":
			c.Author, fe = d.name("author", val)
		case "title":
			c.Title, fe = d.text("title", val)
		case "url":
			c.URL, fe = d.str("url", val, maxValue)
		case "source":
			c.Source, fe = d.name("source", val)
		case "attributes":
			c.Attributes, fe = d.attrs("attributes", val, nil, maxText, true)
		default:
			d.collectUnknown(k, val)
		}
		if fe != nil {
			return fe
		}
	}
	if !hasTime {
		return &fieldError{"time", "missing"}
	}
	if c.Kind == "" {
		return missingError("kind")
	}
	kind, ok := changeKind(string(c.Kind))
	if !ok {
		return &fieldError{"kind", fmt.Sprintf("unknown change kind %q: want deploy, flag, config, rollback or infra", truncateForMessage(string(c.Kind)))}
	}
	c.Kind = kind
	if c.Service == "" {
		return missingError("service")
	}
	var fe *fieldError
	if c.Attributes, fe = d.mergeUnknown(c.Attributes, maxText, true); fe != nil {
		return fe
	}
	if c.ID == "" {
		c.ID = d.ids.change(c)
	}
	return nil
}

// changeKind returns the change kind s names, in any case.
func changeKind(s string) (event.ChangeKind, bool) {
	for _, k := range event.ChangeKinds {
		if strings.EqualFold(s, string(k)) {
			return k, true
		}
	}
	return "", false
}

// errorEvent decodes an errors record into e.
func (d *decoder) errorEvent(e *event.ErrorEvent, obj []byte) *fieldError {
	hasTime := false
	mem := newMembers(obj)
	for {
		key, val, ok := mem.next()
		if !ok {
			break
		}
		var fe *fieldError
		switch k := keyName(key); string(k) {
		case "id":
			e.ID, fe = d.str("id", val, maxIdent)
		case "time":
			e.Time, hasTime, fe = d.timeField("time", val)
		case "service":
			e.Service, fe = d.name("service", val)
		case "environment":
			e.Environment, fe = d.name("environment", val)
		case "release":
			e.Release, fe = d.name("release", val)
		case "fingerprint":
			e.Fingerprint, fe = d.str("fingerprint", val, maxIdent)
		case "type":
			e.Type, fe = d.str("type", val, maxValue)
		case "message":
			e.Message, fe = d.text("message", val)
		case "user_id":
			e.UserID, fe = d.str("user_id", val, maxIdent)
		case "customer_id":
			e.CustomerID, fe = d.str("customer_id", val, maxIdent)
		case "trace_id":
			e.TraceID, fe = d.str("trace_id", val, maxIdent)
		case "level":
			var s string
			if s, fe = d.str("level", val, maxIdent); fe == nil && s != "" {
				var ok bool
				if e.Level, ok = normalizeLevel(s); !ok {
					fe = &fieldError{"level", fmt.Sprintf("unknown level %q: want debug, info, warning, error or fatal", truncateForMessage(s))}
				}
			}
		case "sample_rate":
			if !isNull(val) {
				if e.SampleRate, fe = number("sample_rate", val); fe == nil && !(e.SampleRate > 0 && e.SampleRate <= 1) {
					fe = &fieldError{"sample_rate", fmt.Sprintf("%s is not in (0, 1]", truncateForMessage(string(val)))}
				}
			}
		case "attributes":
			e.Attributes, fe = d.attrs("attributes", val, nil, maxText, true)
		default:
			d.collectUnknown(k, val)
		}
		if fe != nil {
			return fe
		}
	}
	if !hasTime {
		return &fieldError{"time", "missing"}
	}
	if e.Service == "" {
		return missingError("service")
	}
	if e.Level == "" {
		e.Level = "error"
	}
	if e.SampleRate == 0 {
		e.SampleRate = 1
	}
	var fe *fieldError
	if e.Attributes, fe = d.mergeUnknown(e.Attributes, maxText, true); fe != nil {
		return fe
	}
	if e.Fingerprint == "" {
		e.Fingerprint = Fingerprint(e.Service, e.Type, e.Message)
	}
	if e.ID == "" {
		e.ID = d.ids.errorEvent(e)
	}
	return nil
}

// log decodes a logs record into l.
func (d *decoder) log(l *event.LogRecord, obj []byte) *fieldError {
	hasTime, hasBody := false, false
	mem := newMembers(obj)
	for {
		key, val, ok := mem.next()
		if !ok {
			break
		}
		var fe *fieldError
		switch k := keyName(key); string(k) {
		case "id":
			l.ID, fe = d.str("id", val, maxIdent)
		case "time":
			l.Time, hasTime, fe = d.timeField("time", val)
		case "service":
			l.Service, fe = d.name("service", val)
		case "severity":
			l.Severity, fe = d.severity(val)
		case "body":
			switch val[0] {
			case 'n':
				hasBody = false
			case '"':
				l.Body, fe = d.text("body", val)
				hasBody = true
			default:
				// A structured body (OpenTelemetry allows any value)
				// is kept as its JSON text rather than refused.
				l.Body, _, _ = scalarText("body", val, maxText, true)
				hasBody = true
			}
		case "user_id":
			l.UserID, fe = d.str("user_id", val, maxIdent)
		case "customer_id":
			l.CustomerID, fe = d.str("customer_id", val, maxIdent)
		case "trace_id":
			l.TraceID, fe = d.str("trace_id", val, maxIdent)
		case "span_id":
			l.SpanID, fe = d.str("span_id", val, maxIdent)
		case "attributes":
			l.Attributes, fe = d.attrs("attributes", val, nil, maxText, true)
		default:
			d.collectUnknown(k, val)
		}
		if fe != nil {
			return fe
		}
	}
	if !hasTime {
		return &fieldError{"time", "missing"}
	}
	if l.Service == "" {
		return missingError("service")
	}
	if !hasBody {
		return &fieldError{"body", "missing (send \"\" for an empty body)"}
	}
	if l.Severity == "" {
		l.Severity = SeverityInfo
	}
	var fe *fieldError
	if l.Attributes, fe = d.mergeUnknown(l.Attributes, maxText, true); fe != nil {
		return fe
	}
	if l.ID == "" {
		l.ID = d.ids.log(l)
	}
	return nil
}

// severity decodes a log severity: a text NormalizeSeverity knows or an
// OpenTelemetry severity number. "" means unspecified.
func (d *decoder) severity(raw []byte) (string, *fieldError) {
	switch jsonType(raw) {
	case "null":
		return "", nil
	case "number":
		n, err := strconv.Atoi(string(raw))
		if err != nil || n < 0 || n > 24 {
			return "", &fieldError{"severity", fmt.Sprintf("severity number %s is not in 0..24", truncateForMessage(string(raw)))}
		}
		s, _ := severityFromNumber(n)
		return s, nil
	case "string":
		s, fe := d.str("severity", raw, maxIdent)
		if fe != nil || s == "" {
			return "", fe
		}
		v, ok := NormalizeSeverity(s)
		if !ok {
			return "", &fieldError{"severity", fmt.Sprintf("unknown severity %q: want TRACE, DEBUG, INFO, WARN, ERROR or FATAL", truncateForMessage(s))}
		}
		return v, nil
	}
	return "", typeError("severity", "a string or an OpenTelemetry severity number", raw)
}

// metric decodes a metrics record into p.
func (d *decoder) metric(p *event.MetricPoint, obj []byte) *fieldError {
	hasTime, hasValue := false, false
	mem := newMembers(obj)
	for {
		key, val, ok := mem.next()
		if !ok {
			break
		}
		var fe *fieldError
		switch k := keyName(key); string(k) {
		case "time":
			p.Time, hasTime, fe = d.timeField("time", val)
		case "service":
			p.Service, fe = d.name("service", val)
		case "name":
			if p.Name, fe = d.name("name", val); fe == nil && p.Name != "" && !validMetricName(p.Name) {
				fe = &fieldError{"name", fmt.Sprintf("invalid metric name %q: want ^[a-zA-Z_:][a-zA-Z0-9_:]*$", truncateForMessage(p.Name))}
			}
		case "value":
			hasValue = !isNull(val)
			if hasValue {
				p.Value, fe = number("value", val)
			}
		case "labels":
			p.Labels, fe = d.attrs("labels", val, nil, maxValue, false)
		default:
			d.collectUnknown(k, val)
		}
		if fe != nil {
			return fe
		}
	}
	if !hasTime {
		return &fieldError{"time", "missing"}
	}
	if p.Service == "" {
		return missingError("service")
	}
	if p.Name == "" {
		return missingError("name")
	}
	if !hasValue {
		return &fieldError{"value", "missing"}
	}
	var fe *fieldError
	p.Labels, fe = d.mergeUnknown(p.Labels, maxValue, false)
	return fe
}

// service decodes a services record into s.
func (d *decoder) service(s *event.Service, obj []byte) *fieldError {
	hasTime := false
	mem := newMembers(obj)
	for {
		key, val, ok := mem.next()
		if !ok {
			break
		}
		var fe *fieldError
		switch k := keyName(key); string(k) {
		case "service":
			s.Service, fe = d.name("service", val)
		case "time":
			s.Time, hasTime, fe = d.timeField("time", val)
		case "depends_on":
			s.DependsOn, fe = d.dependsOn(val)
		default:
			return &fieldError{truncateForMessage(string(k)), "unknown field: services records have service, depends_on and time"}
		}
		if fe != nil {
			return fe
		}
	}
	if s.Service == "" {
		return missingError("service")
	}
	for i, dep := range s.DependsOn {
		if dep == s.Service {
			return &fieldError{"depends_on[" + strconv.Itoa(i) + "]", fmt.Sprintf("%q is the service itself", truncateForMessage(dep))}
		}
	}
	if s.DependsOn == nil {
		s.DependsOn = []string{} // "calls nothing", encoded as [] not null
	}
	if !hasTime {
		s.Time = d.now.UTC()
	}
	return nil
}

// dependsOn decodes depends_on: service names, none empty, duplicates
// dropped (first kept).
func (d *decoder) dependsOn(raw []byte) ([]string, *fieldError) {
	if isNull(raw) {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, typeError("depends_on", "an array of strings", raw)
	}
	var deps []string
	var seen map[string]bool // only for long lists; short ones are scanned
	els := newElements(raw)
	for i := 0; ; i++ {
		val, ok := els.next()
		if !ok {
			break
		}
		field := "depends_on[" + strconv.Itoa(i) + "]"
		if val[0] != '"' {
			return nil, typeError(field, "a string", val)
		}
		dep, fe := d.name(field, val)
		if fe != nil {
			return nil, fe
		}
		if dep == "" {
			return nil, &fieldError{field, "empty service name"}
		}
		if len(deps) == 16 && seen == nil {
			seen = make(map[string]bool)
			for _, s := range deps {
				seen[s] = true
			}
		}
		switch {
		case seen != nil:
			if seen[dep] {
				continue
			}
			seen[dep] = true
		case containsString(deps, dep):
			continue
		}
		deps = append(deps, dep)
	}
	return deps, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// decodeInto decodes b in place into a new slot at the end of *records,
// which is dropped again if the record is rejected: records are a few
// hundred bytes and copying them would show in the profile.
func decodeInto[T any](records *[]T, capacity int, decode func(*T, []byte) *fieldError, b []byte) *fieldError {
	if *records == nil {
		*records = make([]T, 0, capacity)
	}
	*records = append(*records, *new(T))
	fe := decode(&(*records)[len(*records)-1], b)
	if fe != nil {
		*records = (*records)[:len(*records)-1]
	}
	return fe
}
