package otlplogs

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/prometheus/client_golang/prometheus"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Writer receives the decoded records; *store.BatchWriter implements it.
// Add must not keep b past its return unless it owns it: the receiver never
// touches a batch again once it is handed over. An error means the records
// were not taken, and the client is told to retry.
type Writer interface {
	Add(ctx context.Context, b *event.Batch) error
}

// Config configures the receiver. The zero value is ready to use.
type Config struct {
	// MaxBodyBytes caps a request body, counted after gzip decompression.
	// Larger bodies get 413. Default 20 MiB, the OTLP specification's
	// recommendation.
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes"`
	// DefaultService is the service of records whose resource has no
	// service.name. Default "unknown_service".
	DefaultService string `yaml:"default_service" json:"default_service"`
	// UserAttributes are the attribute keys holding the user id, in order
	// of preference. Default ["user.id", "enduser.id"].
	UserAttributes []string `yaml:"user_attributes" json:"user_attributes"`
	// CustomerAttributes are the attribute keys holding the customer
	// (tenant) id, in order of preference. Default ["customer.id",
	// "tenant.id"].
	CustomerAttributes []string `yaml:"customer_attributes" json:"customer_attributes"`
	// ResourceAttributes are the resource attribute keys copied into each
	// record's attributes. Empty copies all of them; ["-"] copies none.
	ResourceAttributes []string `yaml:"resource_attributes" json:"resource_attributes"`
}

// Defaults applied by New to zero Config fields.
const (
	DefaultMaxBodyBytes = 20 << 20
	DefaultService      = "unknown_service"
)

// Validate reports the first invalid field, naming it.
func (c Config) Validate() error {
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("otlp_logs: max_body_bytes: must not be negative, got %d", c.MaxBodyBytes)
	}
	if len(c.DefaultService) > maxIdent {
		return fmt.Errorf("otlp_logs: default_service: longer than %d bytes", maxIdent)
	}
	for _, l := range []struct {
		name string
		keys []string
	}{{"user_attributes", c.UserAttributes}, {"customer_attributes", c.CustomerAttributes}, {"resource_attributes", c.ResourceAttributes}} {
		for i, k := range l.keys {
			if k == "" {
				return fmt.Errorf("otlp_logs: %s[%d]: empty attribute key", l.name, i)
			}
		}
	}
	if len(c.ResourceAttributes) > 1 && contains(c.ResourceAttributes, "-") {
		return fmt.Errorf(`otlp_logs: resource_attributes: "-" (copy none) cannot be combined with keys`)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.DefaultService == "" {
		c.DefaultService = DefaultService
	}
	if c.UserAttributes == nil {
		c.UserAttributes = []string{"user.id", "enduser.id"}
	}
	if c.CustomerAttributes == nil {
		c.CustomerAttributes = []string{"customer.id", "tenant.id"}
	}
	return c
}

// Receiver is the http.Handler of POST /v1/logs. It is safe for concurrent
// use and keeps no state between requests besides its metrics.
type Receiver struct {
	cfg     Config
	w       Writer
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time
}

// New validates cfg and returns a receiver writing to w. A nil reg
// registers no metrics; a nil log discards.
func New(cfg Config, w Writer, log *slog.Logger, reg prometheus.Registerer) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("otlp_logs: nil writer")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg, collectorName)
	if err != nil {
		return nil, fmt.Errorf("otlp_logs: register metrics: %w", err)
	}
	return &Receiver{cfg: cfg.withDefaults(), w: w, log: log.With("collector", collectorName), metrics: m, now: time.Now}, nil
}

// collectorName is the value of the collector label of the metrics.
const collectorName = "otlp_logs"

// encoding is the wire format of a request, and so of its response.
type encoding int

const (
	encProto encoding = iota
	encJSON
)

func (e encoding) contentType() string {
	if e == encJSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

// ServeHTTP handles one export request.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		rc.fail(w, encProto, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	enc, ok := requestEncoding(r.Header.Get("Content-Type"))
	if !ok {
		// The response cannot be in an encoding the client did not name,
		// so the Status goes out as protobuf, the OTLP default.
		rc.fail(w, encProto, http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Sprintf("unsupported Content-Type %q: send application/x-protobuf or application/json", r.Header.Get("Content-Type")))
		return
	}
	body, status, reason, err := rc.readBody(w, r)
	if err != nil {
		rc.fail(w, enc, status, reason, err.Error())
		return
	}
	req, err := decodeRequest(body, enc)
	if err != nil {
		rc.fail(w, enc, http.StatusBadRequest, "decode", err.Error())
		return
	}
	conv := converter{cfg: &rc.cfg, json: enc == encJSON, now: rc.now()}
	logs, rejects := conv.convert(req)
	for _, rj := range rejects {
		rc.metrics.rejected.WithLabelValues(rj.reason).Inc()
	}
	if len(logs) > 0 {
		if err := rc.w.Add(r.Context(), &event.Batch{Logs: logs}); err != nil {
			rc.log.Warn("cannot hand logs to the writer", "records", len(logs), "err", err)
			w.Header().Set("Retry-After", "5")
			rc.fail(w, enc, http.StatusServiceUnavailable, "write", "cannot store the records now, retry later")
			return
		}
		rc.metrics.accepted.Add(float64(len(logs)))
	}
	resp := &collogspb.ExportLogsServiceResponse{}
	if len(rejects) > 0 {
		msg := rejectMessage(rejects)
		resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: int64(len(rejects)), ErrorMessage: msg}
		rc.log.Debug("log records rejected", "accepted", len(logs), "rejected", len(rejects), "first", rejects[0].Error())
	}
	rc.metrics.lastSuccess.SetToCurrentTime()
	rc.write(w, enc, http.StatusOK, resp)
}

// requestEncoding maps a Content-Type to the wire format. Parameters
// (charset) are ignored; application/protobuf is accepted beside the
// specification's application/x-protobuf, as the Collector does.
func requestEncoding(ct string) (encoding, bool) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, false
	}
	switch mt {
	case "application/x-protobuf", "application/protobuf":
		return encProto, true
	case "application/json":
		return encJSON, true
	}
	return 0, false
}

// readBody reads the whole body, decompressing gzip, within MaxBodyBytes.
// On failure it returns the HTTP status and metric reason.
func (rc *Receiver) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, string, error) {
	limit := rc.cfg.MaxBodyBytes
	var src io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch ce := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, statusOf(err, http.StatusBadRequest), reasonOf(err, "decode"), fmt.Errorf("read gzip body: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Errorf("unsupported Content-Encoding %q: send gzip or no encoding", ce)
	}
	// One byte past the limit tells a body of exactly the limit from a
	// larger one after decompression, where MaxBytesReader cannot see.
	body, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		return nil, statusOf(err, http.StatusBadRequest), reasonOf(err, "decode"), fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("body larger than %d bytes after decompression", limit)
	}
	return body, 0, "", nil
}

// statusOf maps a body read error to 413 when the size limit tripped.
func statusOf(err error, def int) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	return def
}

func reasonOf(err error, def string) string {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return "too_large"
	}
	return def
}

// fail answers with a google.rpc.Status, as OTLP requires of 4xx and 5xx.
func (rc *Receiver) fail(w http.ResponseWriter, enc encoding, status int, reason, msg string) {
	rc.metrics.errors.WithLabelValues(reason).Inc()
	rc.log.Debug("otlp request failed", "status", status, "reason", reason, "err", msg)
	// Protobuf strings must be UTF-8; a decoder's message may quote bytes
	// of the body that are not.
	rc.write(w, enc, status, &statuspb.Status{Message: strings.ToValidUTF8(msg, "\uFFFD")})
}

func (rc *Receiver) write(w http.ResponseWriter, enc encoding, status int, m proto.Message) {
	var b []byte
	var err error
	if enc == encJSON {
		b, err = protojson.Marshal(m)
	} else {
		b, err = proto.Marshal(m)
	}
	if err != nil {
		// Only a broken invariant (an invalid message of our own) gets here.
		rc.log.Error("cannot encode otlp response", "err", err)
		http.Error(w, "cannot encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", enc.contentType())
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
