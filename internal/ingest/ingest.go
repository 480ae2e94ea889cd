// Package ingest decodes the request bodies of POST /api/v1/ingest/{kind}
// and the files of `correlator import` into event records.
//
// # Input
//
// A body is either NDJSON, one JSON object per line, or a single JSON array of
// objects; the first byte that is not whitespace (after an optional UTF-8
// byte order mark) decides: '[' means an array. Blank lines are skipped and
// CRLF line endings are accepted. Input is decoded as a stream and records
// are handed to the caller in batches of Options.ChunkSize, so a body of a
// million records is never held in memory at once.
//
// # Errors
//
// A bad record is rejected, counted and reported by line number, and decoding
// goes on: one bad line, malformed JSON included, never costs the rest of the
// body. A record gets at most one error, the first found. For a JSON array
// the line is the one where the element starts. A JSON syntax error inside an
// array is different: once the structure is broken there is no safe place to
// resume, so it is reported once, at the line where it was found, and the
// rest of the input is skipped (records before it are kept; the skipped ones
// are not counted). A line (or array element) longer than
// Options.MaxLineBytes is rejected without being parsed.
//
// # Fields
//
// Each kind accepts the fields of its event type under their JSON names. The
// rules shared by all kinds:
//
//   - A null value is the same as an absent field.
//   - A repeated key: the last one wins, as in encoding/json.
//   - time is required except for services (default: the decoder's clock).
//     It is an RFC 3339 string with any offset (normalised to UTC), or Unix
//     milliseconds as an integer JSON number or a string of digits. It must
//     lie between 2000-01-01 and 24h past the decoder's clock; the message
//     names the likely unit when a number looks like seconds, microseconds or
//     nanoseconds.
//   - Identifiers (id, service, environment, versions, user and trace ids,
//     keys, ...) longer than 256 bytes are rejected; url, error type and
//     label values longer than 4 KiB too. Free text (title, message, body,
//     attribute values) longer than 64 KiB is cut and ends in "…[truncated]".
//   - Invalid UTF-8 in strings is replaced by U+FFFD, as encoding/json does.
//   - attributes and labels are objects. String values are kept, other
//     scalars become their JSON text (true, 12.5), nested objects and arrays
//     their compact JSON text; null values are dropped.
//   - Unknown top-level fields are not an error for changes, errors and logs:
//     they are merged into attributes, and for metrics into labels, with the
//     same value conversion; a key also present in attributes (labels) keeps
//     the attributes' value. services rejects unknown fields, because a
//     topology record has nothing to carry them.
//   - changes, errors and logs without an id (or with "") get one derived
//     from their content: 32 hex digits of a SHA-256 over all their
//     normalised fields. Re-sending an event gives the same id, whatever its
//     key order, time offset or severity spelling, so the store can drop the
//     copy; any difference in any field gives a different id.
//
// Per kind:
//
//   - changes: kind (deploy, flag, config, rollback, infra; any case) and
//     service are required.
//   - errors: service is required; level is a Sentry level (debug, info,
//     warning, error, fatal; aliases such as warn and critical accepted),
//     default error; sample_rate is a number in (0, 1], default 1; without
//     a fingerprint one is derived by Fingerprint.
//   - logs: service and body are required, body may be the empty string; a
//     non-string body (structured logs) is kept as its JSON text. severity
//     is normalised by NormalizeSeverity or given as an OpenTelemetry
//     severity number (1-24); default INFO.
//   - metrics: service, name and value are required; name matches
//     ^[a-zA-Z_:][a-zA-Z0-9_:]*$; value is a finite JSON number (strings such
//     as "NaN" or "1.5" are rejected). Label names are not held to
//     Prometheus' syntax, since unknown fields such as "http.method" become
//     labels.
//   - services: service is required; depends_on is an array of service names
//     without empty names or the service itself, deduplicated in order; it
//     may be absent or empty (a service that calls nothing) and is then [].
//     Without a time, the record is dated by Options.Now.
package ingest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// Defaults applied by Decode to zero Options fields.
const (
	DefaultChunkSize    = 5000
	DefaultMaxErrors    = 100
	DefaultMaxLineBytes = 1 << 20
)

// Options tunes Decode. The zero value is ready to use.
type Options struct {
	// ChunkSize is the number of records per batch handed to emit; the last
	// batch may be smaller. Default DefaultChunkSize.
	ChunkSize int
	// MaxErrors caps Result.Errors; every rejection is still counted in
	// Result.Rejected. Default DefaultMaxErrors; negative keeps none.
	MaxErrors int
	// MaxLineBytes is the longest NDJSON line or JSON array element decoded;
	// longer ones are rejected by line number. Default DefaultMaxLineBytes.
	MaxLineBytes int
	// Now is the clock that bounds future timestamps and dates services
	// records without a time. It is read at the start and after each batch,
	// not per record. Default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.MaxErrors == 0 {
		o.MaxErrors = DefaultMaxErrors
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// LineError reports one rejected record. Field is empty when the record as a
// whole is at fault (bad JSON, a line too long).
type LineError struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Error returns, for instance, `line 12: field "time": cannot parse
// "yesterday": want RFC 3339 or Unix milliseconds`.
func (e LineError) Error() string {
	if e.Field == "" {
		return "line " + strconv.Itoa(e.Line) + ": " + e.Message
	}
	return "line " + strconv.Itoa(e.Line) + ": field " + strconv.Quote(e.Field) + ": " + e.Message
}

// Result summarises a Decode call. Accepted counts the records in batches
// that emit took; Rejected counts the records that failed to decode. Errors
// holds the first Options.MaxErrors rejections, in input order.
type Result struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []LineError `json:"errors,omitempty"`
}

// Decode reads records of the given kind from r and hands them to emit in
// batches, in input order. emit is called on Decode's goroutine, one batch at
// a time, and owns each batch it is given: Decode never touches a batch again
// once emit has it, so emit may keep it or pass it on. Bad records are rejected and
// reported in the Result without stopping the decoding (see the package
// comment).
//
// Decode returns an error, along with the Result so far, when reading r
// fails, when ctx ends, or when emit returns an error; the records of the
// batch emit refused, and those not yet emitted, are not counted as accepted.
func Decode(ctx context.Context, kind event.Kind, r io.Reader, opt Options, emit func(*event.Batch) error) (Result, error) {
	if _, ok := event.ParseKind(string(kind)); !ok {
		return Result{}, fmt.Errorf("decode records: unknown kind %q", kind)
	}
	opt = opt.withDefaults()
	d := &decoder{
		ctx:    ctx,
		kind:   kind,
		opt:    opt,
		emit:   emit,
		now:    opt.Now(),
		batch:  new(event.Batch),
		intern: make(map[string]string),
	}
	err := d.decode(bufio.NewReaderSize(r, readBufferSize))
	if err == nil {
		err = d.flush()
	}
	return d.res, err
}

// readBufferSize is the size of the read buffer; lines longer than it are
// assembled in a separate buffer, up to Options.MaxLineBytes.
const readBufferSize = 64 << 10

// ctxCheckEvery is how many lines pass between checks of the context, besides
// the check at every batch.
const ctxCheckEvery = 4096

// decoder is the state of one Decode call.
type decoder struct {
	ctx  context.Context
	kind event.Kind
	opt  Options
	emit func(*event.Batch) error
	res  Result
	now  time.Time // refreshed at every batch

	batch   *event.Batch // being filled; handed to emit when full
	n       int          // records in batch
	emitted int          // batches emitted so far

	// intern maps low-cardinality strings (service names, attribute keys)
	// to one shared copy so a batch does not hold thousands of equal copies.
	intern  map[string]string
	unknown []unknownField // scratch: unknown top-level fields of a record
	ids     idHasher
}

// unknownField is a top-level field a record's kind does not define.
type unknownField struct {
	key string
	val []byte // raw JSON, valid until the next record
}

// decode dispatches on the input's first significant byte.
func (d *decoder) decode(br *bufio.Reader) error {
	if b, _ := br.Peek(3); len(b) == 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		br.Discard(3)
	}
	line := 1
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return nil // empty input
		}
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		if c == '\n' {
			line++
		}
		if !isSpace(c) {
			if err := br.UnreadByte(); err != nil {
				return fmt.Errorf("read input: %w", err) // unreachable after ReadByte
			}
			if c == '[' {
				return d.decodeArray(br, line)
			}
			return d.decodeLines(br, line)
		}
	}
}

// decodeLines decodes NDJSON from br, whose next byte is on line line.
func (d *decoder) decodeLines(br *bufio.Reader, line int) error {
	max := d.opt.MaxLineBytes
	var long []byte // a line longer than br's buffer, being assembled
	// tooLong is set once a line exceeds max; blank stays set while all of
	// such a line is whitespace, which makes it a blank line after all.
	tooLong, blank := false, true
	for ; ; line++ {
		b, err := br.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			if !tooLong && len(long)+len(b) > max+2 { // +2: room for "\r\n"
				tooLong, long = true, append(long, b...)
				blank = len(trimSpace(long)) == 0
				long = long[:0]
			} else if !tooLong {
				long = append(long, b...)
			} else if blank {
				blank = len(trimSpace(b)) == 0
			}
			b, err = br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read input: %w", err)
		}
		if len(long) > 0 {
			long = append(long, b...)
			b = long
		}
		if len(b) > 0 || tooLong {
			if n := len(b); n > 0 && b[n-1] == '\n' {
				b = b[:n-1]
			}
			if n := len(b); n > 0 && b[n-1] == '\r' {
				b = b[:n-1]
			}
			switch {
			case tooLong && blank && len(trimSpace(b)) == 0:
				// A very long blank line is still blank.
			case tooLong || len(b) > max && len(trimSpace(b)) > 0:
				d.reject(line, "", fmt.Sprintf("line is longer than %d bytes", max))
			default:
				if err := d.record(line, b); err != nil {
					return err
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		long, tooLong, blank = long[:0], false, true
		if line%ctxCheckEvery == 0 {
			if err := d.ctx.Err(); err != nil {
				return fmt.Errorf("decode records: %w", err)
			}
		}
	}
}

// decodeArray decodes a JSON array from br, whose next byte is the '[' on
// line line.
func (d *decoder) decodeArray(br *bufio.Reader, line int) error {
	a := &arrayReader{br: br, line: line, max: d.opt.MaxLineBytes}
	br.Discard(1) // the '[' that decode peeked
	c, ok, err := a.peek()
	if err != nil {
		return err
	}
	if ok && c == ']' {
		br.Discard(1)
		return d.afterArray(a)
	}
	for n := 1; ; n++ {
		// c is the first byte of an element.
		switch {
		case !ok:
			d.reject(a.line, "", "invalid JSON: unexpected end of input inside the array")
			return nil
		case c == ']' || c == ',':
			d.reject(a.line, "", fmt.Sprintf("invalid JSON: unexpected %q in the array, want a value; the rest of the input was skipped", c))
			return nil
		}
		start := a.line
		elem, tooLong, err := a.value()
		if err != nil {
			return err
		}
		switch {
		case tooLong:
			d.reject(start, "", fmt.Sprintf("array element is longer than %d bytes", a.max))
		case !valid(elem):
			l, msg := syntaxError(elem)
			d.reject(start+l, "", msg+"; the rest of the input was skipped")
			return nil
		default:
			if err := d.record(start, elem); err != nil {
				return err
			}
		}
		if c, ok, err = a.peek(); err != nil {
			return err
		}
		switch {
		case !ok:
			d.reject(a.line, "", "invalid JSON: unexpected end of input, want ',' or ']' after an array element")
			return nil
		case c == ']':
			br.Discard(1)
			return d.afterArray(a)
		case c != ',':
			d.reject(a.line, "", fmt.Sprintf("invalid JSON: invalid character %q after an array element, want ',' or ']'; the rest of the input was skipped", c))
			return nil
		}
		br.Discard(1)
		if c, ok, err = a.peek(); err != nil {
			return err
		}
		if n%ctxCheckEvery == 0 {
			if err := d.ctx.Err(); err != nil {
				return fmt.Errorf("decode records: %w", err)
			}
		}
	}
}

// afterArray rejects anything but whitespace after the closing bracket.
func (d *decoder) afterArray(a *arrayReader) error {
	_, ok, err := a.peek()
	if err != nil {
		return err
	}
	if ok {
		d.reject(a.line, "", "unexpected data after the JSON array; the rest of the input was skipped")
	}
	return nil
}

// reject records a rejected record.
func (d *decoder) reject(line int, field, msg string) {
	d.res.Rejected++
	if len(d.res.Errors) < d.opt.MaxErrors {
		d.res.Errors = append(d.res.Errors, LineError{Line: line, Field: field, Message: msg})
	}
}

// flush hands the current batch, if any, to emit.
func (d *decoder) flush() error {
	if d.n == 0 {
		return nil
	}
	if err := d.ctx.Err(); err != nil {
		return fmt.Errorf("decode records: %w", err)
	}
	b, n := d.batch, d.n
	d.batch, d.n = new(event.Batch), 0
	d.emitted++
	if err := d.emit(b); err != nil {
		return fmt.Errorf("emit batch: %w", err)
	}
	d.res.Accepted += n
	d.now = d.opt.Now()
	return nil
}

// batchCap is the capacity to give a kind's slice in a new batch: small for
// the first batch, so that small bodies stay cheap, and a full chunk after,
// so that large bodies do not pay for growing every batch.
func (d *decoder) batchCap() int {
	if d.emitted == 0 {
		return min(d.opt.ChunkSize, 64)
	}
	return d.opt.ChunkSize
}

// added counts a record appended to the batch and emits a full batch.
func (d *decoder) added() error {
	d.n++
	if d.n >= d.opt.ChunkSize {
		return d.flush()
	}
	return nil
}
