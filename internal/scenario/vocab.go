package scenario

// This file holds the fixed vocabulary the generator draws from: the pool of
// services and their call graph, error templates per language, pull-request
// titles, authors, feature flags and config keys. It is data, not logic.

// lang is the implementation language of a service. It decides what its errors
// look like, as a Sentry SDK for that language would report them.
type lang int

const (
	langGo lang = iota
	langJava
	langPython
	langNode
)

// serviceSpec is one entry of the service pool.
type serviceSpec struct {
	name    string
	lang    lang
	peakRPM float64  // requests per minute at the weekday afternoon peak
	p95     float64  // p95 latency in milliseconds at moderate load
	deps    []string // services it calls, when they are part of the scenario
	routes  []string // "METHOD /path" it serves
	weight  float64  // chance of being picked when not every service is
	flags   []string // feature flags it owns
	ext     []extCall
	memMiB  float64 // working set of one replica at moderate load, MiB
}

// extCall is a third-party API a service calls: its name in externalPool and
// the fraction of the service's requests that call it.
type extCall struct {
	name  string
	share float64
}

// servicePool is every service a scenario can contain. frontend and
// api-gateway are always present; a chosen service whose callers were all
// left out is called by api-gateway, so the graph stays connected. Only
// frontend calls api-gateway, which keeps that rewiring acyclic.
var servicePool = []serviceSpec{
	{name: "frontend", lang: langNode, peakRPM: 1500, p95: 180, weight: 1,
		deps:   []string{"api-gateway"},
		routes: []string{"GET /", "GET /product/:id", "GET /cart", "POST /checkout", "GET /search"},
		flags:  []string{"frontend-new-product-page", "frontend-dark-mode", "frontend-prefetch-cart"},
		ext:    []extCall{{"s3", 0.15}}, memMiB: 220},
	{name: "api-gateway", lang: langGo, peakRPM: 1800, p95: 120, weight: 1,
		deps:   []string{"auth", "users", "catalog", "search", "cart", "checkout", "recommendations", "reviews"},
		routes: []string{"GET /api/v1/products", "GET /api/v1/cart", "POST /api/v1/orders", "GET /api/v1/search"},
		flags:  []string{"gateway-http2-upstreams", "gateway-strict-rate-limit"},
		memMiB: 90},
	{name: "checkout", lang: langJava, peakRPM: 90, p95: 350, weight: 0.95,
		deps:   []string{"payments", "cart", "inventory", "shipping", "pricing", "notifications", "users"},
		routes: []string{"POST /v1/checkout", "GET /v1/checkout/{id}", "POST /v1/checkout/{id}/confirm"},
		flags:  []string{"checkout-express-pay", "checkout-new-tax-engine", "checkout-address-autocomplete"},
		ext:    []extCall{{"avalara-api", 0.8}}, memMiB: 1100},
	{name: "payments", lang: langJava, peakRPM: 60, p95: 420, weight: 0.95,
		deps:   []string{"fraud", "ledger"},
		routes: []string{"POST /v1/charges", "POST /v1/refunds", "GET /v1/payment-methods"},
		flags:  []string{"payments-3ds2", "payments-adyen-fallback"},
		ext:    []extCall{{"stripe-api", 0.95}}, memMiB: 1300},
	{name: "cart", lang: langGo, peakRPM: 400, p95: 40, weight: 0.9,
		deps:   []string{"catalog", "inventory", "pricing"},
		routes: []string{"GET /v1/cart", "POST /v1/cart/items", "DELETE /v1/cart/items/{id}"},
		flags:  []string{"cart-redis-cluster", "cart-save-for-later"},
		memMiB: 120},
	{name: "search", lang: langPython, peakRPM: 450, p95: 150, weight: 0.85,
		deps:   []string{"catalog"},
		routes: []string{"GET /v1/search", "GET /v1/suggest"},
		flags:  []string{"search-semantic-ranking", "search-typo-tolerance"},
		ext:    []extCall{{"openai-api", 0.35}}, memMiB: 380},
	{name: "recommendations", lang: langPython, peakRPM: 380, p95: 90, weight: 0.6,
		deps:   []string{"catalog", "users"},
		routes: []string{"GET /v1/recommendations", "GET /v1/recommendations/similar/{id}"},
		flags:  []string{"recs-model-v7", "recs-cold-start-popular"},
		ext:    []extCall{{"openai-api", 0.25}}, memMiB: 520},
	{name: "reviews", lang: langNode, peakRPM: 200, p95: 70, weight: 0.4,
		deps:   []string{"users"},
		routes: []string{"GET /v1/reviews", "POST /v1/reviews"},
		flags:  []string{"reviews-photo-upload"},
		ext:    []extCall{{"s3", 0.2}}, memMiB: 180},
	{name: "catalog", lang: langJava, peakRPM: 900, p95: 60, weight: 0.9,
		deps:   []string{"inventory", "pricing", "media"},
		routes: []string{"GET /v1/products", "GET /v1/products/{id}", "GET /v1/categories"},
		flags:  []string{"catalog-graphql-read-path", "catalog-variant-grouping"},
		ext:    []extCall{{"s3", 0.1}}, memMiB: 1400},
	{name: "auth", lang: langGo, peakRPM: 1200, p95: 25, weight: 0.85,
		deps:   []string{"users", "sessions"},
		routes: []string{"POST /v1/token", "POST /v1/token/refresh", "GET /v1/introspect"},
		flags:  []string{"auth-passkeys", "auth-short-token-ttl"},
		ext:    []extCall{{"google-oauth", 0.08}}, memMiB: 70},
	{name: "notifications", lang: langNode, peakRPM: 150, p95: 80, weight: 0.75,
		deps:   []string{"users", "email"},
		routes: []string{"POST /v1/notifications", "GET /v1/notifications/preferences"},
		flags:  []string{"notifications-batch-send", "notifications-push-v2"},
		ext:    []extCall{{"twilio-api", 0.3}}, memMiB: 200},
	{name: "shipping", lang: langPython, peakRPM: 70, p95: 200, weight: 0.75,
		deps:   []string{"geo"},
		routes: []string{"POST /v1/quotes", "POST /v1/shipments", "GET /v1/shipments/{id}"},
		flags:  []string{"shipping-carrier-dhl-v2", "shipping-eta-model"},
		ext:    []extCall{{"here-maps-api", 0.5}}, memMiB: 300},
	{name: "users", lang: langGo, peakRPM: 700, p95: 20, weight: 0.85,
		routes: []string{"GET /v1/users/{id}", "PATCH /v1/users/{id}", "GET /v1/users/{id}/addresses"},
		flags:  []string{"users-profile-cache"},
		ext:    []extCall{{"s3", 0.05}}, memMiB: 80},
	{name: "inventory", lang: langGo, peakRPM: 350, p95: 15, weight: 0.85,
		routes: []string{"GET /v1/stock/{sku}", "POST /v1/reservations", "DELETE /v1/reservations/{id}"},
		flags:  []string{"inventory-soft-reservations", "inventory-warehouse-sharding"},
		memMiB: 60},
	{name: "pricing", lang: langGo, peakRPM: 500, p95: 18, weight: 0.5,
		deps:   []string{"currency"},
		routes: []string{"POST /v1/prices/quote", "GET /v1/prices/{sku}"},
		flags:  []string{"pricing-dynamic-discounts"},
		memMiB: 75},
	{name: "fraud", lang: langPython, peakRPM: 55, p95: 160, weight: 0.45,
		routes: []string{"POST /v1/assessments"},
		flags:  []string{"fraud-model-2024-q3", "fraud-velocity-rules"},
		ext:    []extCall{{"stripe-api", 0.6}}, memMiB: 650},
	{name: "ledger", lang: langJava, peakRPM: 50, p95: 45, weight: 0.4,
		routes: []string{"POST /v1/entries", "GET /v1/balances/{account}"},
		flags:  []string{"ledger-async-posting"},
		memMiB: 900},
	{name: "email", lang: langNode, peakRPM: 40, p95: 300, weight: 0.35,
		routes: []string{"POST /v1/send"},
		flags:  []string{"email-sendgrid-failover"},
		ext:    []extCall{{"sendgrid-api", 0.95}}, memMiB: 160},
	{name: "sessions", lang: langGo, peakRPM: 1000, p95: 8, weight: 0.4,
		routes: []string{"GET /v1/sessions/{id}", "PUT /v1/sessions/{id}"},
		flags:  []string{"sessions-sliding-expiry"},
		memMiB: 50},
	{name: "media", lang: langGo, peakRPM: 300, p95: 35, weight: 0.3,
		routes: []string{"GET /v1/images/{id}", "POST /v1/images"},
		flags:  []string{"media-avif"},
		ext:    []extCall{{"s3", 0.9}}, memMiB: 110},
	{name: "currency", lang: langGo, peakRPM: 200, p95: 12, weight: 0.3,
		routes: []string{"GET /v1/rates"},
		flags:  []string{"currency-ecb-source"},
		ext:    []extCall{{"openexchangerates-api", 0.05}}, memMiB: 45},
	{name: "geo", lang: langPython, peakRPM: 90, p95: 60, weight: 0.3,
		routes: []string{"GET /v1/geocode", "GET /v1/zones/{postcode}"},
		flags:  []string{"geo-here-provider"},
		ext:    []extCall{{"here-maps-api", 0.7}}, memMiB: 260},
}

// errTemplate is an error as an SDK would report it. A "%d" in msg is filled
// per event with a number; the fingerprint is of the template, so events of
// one template group together as Sentry groups them.
type errTemplate struct {
	typ    string
	msg    string
	level  string
	status int // HTTP status of the failed request
}

// chronicErrors are the errors a healthy service of each language throws at
// a low rate all the time.
var chronicErrors = map[lang][]errTemplate{
	langGo: {
		{"context.deadlineExceededError", "context deadline exceeded", "error", 504},
		{"*net.OpError", "dial tcp 10.12.%d.17:5432: connect: connection refused", "error", 503},
		{"*validation.Error", "validation failed: quantity must be between 1 and 99 (got %d)", "warning", 400},
		{"*pq.Error", "pq: canceling statement due to statement timeout", "error", 500},
		{"*errors.errorString", "rate limit exceeded for client %d", "warning", 429},
		{"*redis.Error", "redis: connection pool timeout", "error", 503},
	},
	langJava: {
		{"java.net.SocketTimeoutException", "Read timed out", "error", 504},
		{"javax.validation.ConstraintViolationException", "quantity: must be greater than 0", "warning", 400},
		{"java.lang.NullPointerException", "Cannot invoke \"com.acme.model.Address.getPostalCode()\" because \"address\" is null", "error", 500},
		{"org.springframework.dao.DataIntegrityViolationException", "duplicate key value violates unique constraint \"orders_idempotency_key\"", "error", 409},
		{"java.util.concurrent.TimeoutException", "TimeoutError: no response from upstream within 5000 ms", "error", 504},
		{"org.hibernate.StaleObjectStateException", "Row was updated or deleted by another transaction: [com.acme.model.Order#%d]", "error", 409},
	},
	langPython: {
		{"TimeoutError", "timed out waiting for response after 5000ms", "error", 504},
		{"ValidationError", "1 validation error for Request: query: ensure this value has at most 256 characters", "warning", 422},
		{"KeyError", "'locale'", "error", 500},
		{"redis.exceptions.ConnectionError", "Error 111 connecting to redis-master:6379. Connection refused.", "error", 503},
		{"psycopg2.OperationalError", "server closed the connection unexpectedly", "error", 500},
	},
	langNode: {
		{"TimeoutError", "Request timed out after 3000ms", "error", 504},
		{"ValidationError", "\"email\" must be a valid email", "warning", 400},
		{"TypeError", "Cannot read properties of undefined (reading 'price')", "error", 500},
		{"FetchError", "request to http://10.12.%d.40:8080/ failed, reason: socket hang up", "error", 502},
		{"Error", "ECONNRESET", "error", 502},
	},
}

// regressionErrors are the errors a bad release introduces. They never occur
// in a healthy service, so the fingerprint is new when the incident starts.
var regressionErrors = map[lang][]errTemplate{
	langGo: {
		{"runtime.Error", "runtime error: invalid memory address or nil pointer dereference", "fatal", 500},
		{"*pq.Error", "pq: column \"discount_code\" does not exist", "error", 500},
		{"*json.UnmarshalTypeError", "json: cannot unmarshal string into Go struct field LineItem.quantity of type int", "error", 500},
		{"runtime.Error", "runtime error: index out of range [%d] with length 0", "fatal", 500},
	},
	langJava: {
		{"java.sql.SQLSyntaxErrorException", "Unknown column 'o.discount_code' in 'field list'", "error", 500},
		{"java.lang.ClassCastException", "class java.lang.String cannot be cast to class java.lang.Long", "error", 500},
		{"com.fasterxml.jackson.databind.exc.MismatchedInputException", "Cannot deserialize value of type `java.math.BigDecimal` from String \"12,50\"", "error", 500},
		{"java.lang.IllegalStateException", "Duplicate key %d (attempted merging values)", "error", 500},
	},
	langPython: {
		{"AttributeError", "'NoneType' object has no attribute 'currency'", "error", 500},
		{"TypeError", "unsupported operand type(s) for +: 'decimal.Decimal' and 'float'", "error", 500},
		{"sqlalchemy.exc.ProgrammingError", "(psycopg2.errors.UndefinedColumn) column \"discount_code\" does not exist", "error", 500},
		{"IndexError", "list index out of range", "error", 500},
	},
	langNode: {
		{"TypeError", "Cannot read properties of null (reading 'currency')", "error", 500},
		{"RangeError", "Invalid time value", "error", 500},
		{"SyntaxError", "Unexpected token < in JSON at position 0", "error", 500},
		{"ReferenceError", "formatPrice is not defined", "error", 500},
	},
}

// upstreamError is how a caller of each language reports a failed call to a
// dependency; "{dep}", "{method}" and "{path}" are the callee and its route.
var upstreamError = map[lang]errTemplate{
	langGo:     {"*client.StatusError", "{method} http://{dep}.prod.svc:8080{path}: unexpected status 500 Internal Server Error", "error", 502},
	langJava:   {"org.springframework.web.client.HttpServerErrorException$InternalServerError", "500 Internal Server Error on {method} request for \"http://{dep}{path}\"", "error", 502},
	langPython: {"requests.exceptions.HTTPError", "500 Server Error: Internal Server Error for url: http://{dep}:8080{path}", "error", 502},
	langNode:   {"HTTPError", "Response code 500 (Internal Server Error) from {dep} {method} {path}", "error", 502},
}

// authors are the engineers who merge and ship changes.
var authors = []string{
	"alice.nguyen", "bkowalski", "carlos-m", "dpatel", "emma-schulz", "fkimura",
	"gabriel.r", "hannah-o", "ivan.petrov", "jwu", "kofi-mensah", "laura.b",
	"mrossi", "nadia-k", "oliver.t", "priya-s", "quentin.l", "rsato",
}

// prSubjects are pull-request subjects; "{svc}" and "{dep}" are filled in.
var prSubjects = []string{
	"add retries with jitter to {dep} client",
	"bump {dep} client SDK",
	"refactor {svc} request handler",
	"migrate {svc} to structured logging",
	"add index on orders.created_at",
	"cache {dep} responses for 30s",
	"upgrade Go toolchain and dependencies",
	"fix flaky integration test",
	"add OpenTelemetry spans around {dep} calls",
	"remove dead code behind retired flag",
	"tune connection pool for {dep}",
	"support EU VAT ids",
	"paginate list endpoints",
	"add idempotency keys to writes",
	"improve error messages for invalid input",
	"switch JSON encoder to streaming",
	"handle empty cart edge case",
	"add discount codes to order model",
	"upgrade base image to debian bookworm",
	"batch {dep} lookups",
	"add metrics for cache hit ratio",
	"move {svc} config to env vars",
	"drop deprecated v0 endpoints",
	"parallelize {dep} fan-out",
}

// rollbackReasons explain background rollbacks, which undo innocent deploys.
var rollbackReasons = []string{
	"canary p99 above SLO",
	"wrong image tag",
	"feature not ready, reverting",
	"migration needs to run first",
	"memory usage higher than expected",
}

// configKey is a config setting with the values it moves between.
type configKey struct {
	key    string
	values []string
}

// configKeys are the settings background config changes edit.
var configKeys = []configKey{
	{"http.client.timeout", []string{"2s", "3s", "5s"}},
	{"db.pool.max_size", []string{"20", "40", "30"}},
	{"cache.ttl", []string{"5m", "10m", "2m"}},
	{"replicas", []string{"4", "6", "8", "5"}},
	{"log.level", []string{"info", "debug", "info"}},
	{"rate_limit.rps", []string{"200", "300", "250"}},
	{"retry.max_attempts", []string{"2", "3"}},
	{"resources.limits.memory", []string{"512Mi", "1Gi", "768Mi"}},
	{"gc.percent", []string{"100", "200"}},
}

// flagSteps are the states a feature flag rolls through.
var flagSteps = []string{"off", "10%", "50%", "100%", "off"}

// externalSpec is a third-party API: not one of our services, so it has no
// records of its own; its failures show only in its callers.
type externalSpec struct {
	name  string
	host  string
	route string // "METHOD /path" callers use
}

// externalPool holds the third parties services call, by name.
var externalPool = map[string]externalSpec{
	"s3":                    {"s3", "acme-assets.s3.eu-west-1.amazonaws.com", "GET /objects/{key}"},
	"stripe-api":            {"stripe-api", "api.stripe.com", "POST /v1/payment_intents"},
	"avalara-api":           {"avalara-api", "rest.avatax.com", "POST /api/v2/transactions/create"},
	"openai-api":            {"openai-api", "api.openai.com", "POST /v1/embeddings"},
	"google-oauth":          {"google-oauth", "oauth2.googleapis.com", "POST /token"},
	"twilio-api":            {"twilio-api", "api.twilio.com", "POST /2010-04-01/Messages.json"},
	"here-maps-api":         {"here-maps-api", "geocode.search.hereapi.com", "GET /v1/geocode"},
	"sendgrid-api":          {"sendgrid-api", "api.sendgrid.com", "POST /v3/mail/send"},
	"openexchangerates-api": {"openexchangerates-api", "openexchangerates.org", "GET /api/latest.json"},
}

// extTimeout is how a caller of each language reports a call to a third party
// that timed out; it happens now and then, so its fingerprint is chronic.
// "{ext}", "{host}", "{method}" and "{path}" are filled in.
var extTimeout = map[lang]errTemplate{
	langGo:     {"*url.Error", "{method} \"https://{host}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)", "error", 504},
	langJava:   {"org.springframework.web.client.ResourceAccessException", "I/O error on {method} request for \"https://{host}{path}\": Read timed out", "error", 504},
	langPython: {"requests.exceptions.ReadTimeout", "HTTPSConnectionPool(host='{host}', port=443): Read timed out. (read timeout=10)", "error", 504},
	langNode:   {"TimeoutError", "Timeout awaiting 'response' for 10000ms ({ext})", "error", 504},
}

// extUnavailable is how a caller reports a third party answering 503, which
// a healthy third party does not: the fingerprint is new in an outage.
var extUnavailable = map[lang]errTemplate{
	langGo:     {"*client.StatusError", "upstream {ext} returned 503 Service Unavailable ({method} https://{host}{path})", "error", 502},
	langJava:   {"org.springframework.web.client.HttpServerErrorException$ServiceUnavailable", "503 Service Unavailable on {method} request for \"https://{host}{path}\"", "error", 502},
	langPython: {"requests.exceptions.HTTPError", "503 Server Error: Service Unavailable for url: https://{host}{path}", "error", 502},
	langNode:   {"HTTPError", "Response code 503 (Service Unavailable) from {ext} {method} {path}", "error", 502},
}

// oomErrors are what the requests in flight on a replica killed for memory
// report, per language.
var oomErrors = map[lang]errTemplate{
	langGo:     {"ContainerRestarted", "container restarted: OOMKilled (exit code 137), in-flight request aborted", "fatal", 503},
	langJava:   {"java.lang.OutOfMemoryError", "Java heap space", "fatal", 503},
	langPython: {"MemoryError", "", "fatal", 503},
	langNode:   {"ContainerRestarted", "container restarted: OOMKilled (exit code 137), FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory", "fatal", 503},
}

// configFault is a config edit that breaks a service: the key, what it
// turns each benign value into, and what the service does then.
type configFault struct {
	key        string
	bad        map[string]string // old value -> bad value
	errs       map[lang]errTemplate
	chronicTyp string  // reuse the service's chronic error of this type when it has one
	latency    float64 // p95 multiplier at full effect, at least 1
	ratio      float64 // error ratio at full effect; 0 for latency only
}

// configFaults are the ways a config edit breaks a service. Their keys are
// in configKeys, so background edits touch them too, with benign values.
var configFaults = []configFault{
	{key: "db.pool.max_size", bad: map[string]string{"20": "2", "40": "4", "30": "3"}, latency: 5, ratio: 0.04,
		errs: map[lang]errTemplate{
			langGo:     {"*pgconn.ConnectError", "pgxpool: acquire connection: context deadline exceeded", "error", 503},
			langJava:   {"java.sql.SQLTransientConnectionException", "HikariPool-1 - Connection is not available, request timed out after 30000ms.", "error", 503},
			langPython: {"sqlalchemy.exc.TimeoutError", "QueuePool limit of size 3 overflow 0 reached, connection timed out, timeout 30.00", "error", 503},
			langNode:   {"KnexTimeoutError", "Knex: Timeout acquiring a connection. The pool is probably full. Are you missing a .transacting(trx) call?", "error", 503},
		}},
	{key: "http.client.timeout", bad: map[string]string{"2s": "200ms", "3s": "300ms", "5s": "500ms"}, latency: 1, ratio: 0.05,
		chronicTyp: "timeout",
		errs: map[lang]errTemplate{
			langGo:     {"context.deadlineExceededError", "context deadline exceeded", "error", 504},
			langJava:   {"java.net.SocketTimeoutException", "Read timed out", "error", 504},
			langPython: {"TimeoutError", "timed out waiting for response after 300ms", "error", 504},
			langNode:   {"TimeoutError", "Request timed out after 300ms", "error", 504},
		}},
	{key: "rate_limit.rps", bad: map[string]string{"200": "20", "300": "30", "250": "25"}, latency: 1, ratio: 0.08,
		errs: map[lang]errTemplate{
			langGo:     {"*ratelimit.ExceededError", "rate limit exceeded: limit 20 rps, retry after %dms", "warning", 429},
			langJava:   {"io.github.resilience4j.ratelimiter.RequestNotPermitted", "RateLimiter 'default' does not permit further calls", "warning", 429},
			langPython: {"slowapi.errors.RateLimitExceeded", "20 per 1 second", "warning", 429},
			langNode:   {"TooManyRequestsError", "Too many requests, please try again later.", "warning", 429},
		}},
	{key: "cache.ttl", bad: map[string]string{"5m": "0s", "10m": "0s", "2m": "0s"}, latency: 3},
}

// regions are where a region-split service runs, with their traffic shares.
var regions = []struct {
	name  string
	share float64
}{{"us-east-1", 0.5}, {"eu-west-1", 0.35}, {"ap-southeast-1", 0.15}}

// mitigationReasons explain the rollback that ends an incident.
var mitigationReasons = []string{
	"error rate spike after deploy",
	"5xx alert firing, reverting",
	"reverting while we investigate",
}
