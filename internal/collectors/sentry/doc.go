// Package sentry brings Sentry error events into correlator as
// event.ErrorEvent records, by three paths that give one event the same
// record and id, so the store keeps one copy whichever paths saw it:
//
//   - Intake, a Sentry-compatible ingestion endpoint. An SDK's DSN points at
//     correlator (http://PUBLIC_KEY@correlator:8080/PROJECT_ID), or a relay
//     forwards a copy. It speaks the envelope endpoint
//     (POST /api/{project_id}/envelope/) and the older store endpoint
//     (POST /api/{project_id}/store/).
//   - Webhook, for the webhooks of a Sentry internal integration (issue
//     alerts, resource "event_alert"; and error webhooks, resource "error").
//   - Poller, which pulls issues and their events from Sentry's REST API,
//     for backfill.
//
// # Wiring
//
// The configuration section is "sentry" (Config; Config.Validate names each
// bad field as sentry.projects[1].id ...). In `correlator serve`:
//
//	intake, err := sentry.NewIntake(cfg.Sentry, batchWriter, logger, prometheus.DefaultRegisterer)
//	intake.Register(mux) // /api/{project_id}/envelope/ and /api/{project_id}/store/
//
//	hook, err := sentry.NewWebhook(cfg.Sentry, batchWriter, logger, reg)
//	mux.Handle("POST /collect/sentry", hook) // the integration's webhook URL
//
//	poller, err := sentry.NewPoller(cfg.Sentry, batchWriter, logger, reg, sentry.PollerOptions{})
//	go poller.Run(ctx) // owned by serve: cancel ctx and wait for it
//
// Every configured project is polled. The intake and the webhook
// authenticate by themselves (the DSN public key;
// the Sentry-Hook-Signature HMAC), so they sit outside the API's bearer
// token check. Each entry point registers its metrics with its own
// "collector" label (sentry, sentry_webhook, sentry_api).
//
// # Intake
//
// Authentication: the public key comes from X-Sentry-Auth ("Sentry
// sentry_key=..., ..."), an Authorization header of the same form, the
// sentry_key query parameter (browser SDKs), or, for envelopes, the "dsn"
// envelope header; where several are given they must agree, and a dsn must
// name the URL's project. No key: 401. A key not configured for the
// project, or a project not configured: 403. The response is Sentry's:
// 200 {"id": "<event_id>"}, errors as {"detail": "..."} (also in the
// X-Sentry-Error header).
//
// Bodies may be compressed (Content-Encoding gzip, deflate, br or zstd;
// others get 415) and are limited to Config.MaxBodyBytes before and after
// decompression (413). Envelope items other than "event" (transactions,
// sessions, client reports, attachments, ...) are accepted, not stored, and
// counted in correlator_collector_sentry_items_ignored_total{type}. A bad
// event item is rejected with 400 naming the item and the field
// ("envelope items[1] (event): field timestamp: ..."); the good items of the
// same envelope are stored all the same.
//
// # Mapping
//
//   - ID: derived from the event_id alone (32 hex digits of SHA-256), so
//     the three paths agree; a payload without one gets an id derived from
//     its bytes. The event id itself is kept in the attribute
//     sentry.event_id.
//   - Time: the event's timestamp (RFC 3339 or Unix seconds), cut to
//     milliseconds; without one, the envelope's sent_at or the receipt time.
//   - Service: the tag named by Config.ServiceTag, else the project's
//     service, else server_name if Config.ServiceFromServerName.
//   - Type and Message: of the last exception of the chain (the protocol
//     lists them oldest first, so the last is the one raised); without an
//     exception, the message or logentry.
//   - Fingerprint: see fingerprint; the SDK's own fingerprint is honoured,
//     with "{{ default }}" meaning the computed one.
//   - UserID: the first of user id, email, ip_address and username,
//     HMAC-SHA256'd with Config.UserSalt unless Config.KeepRawUser; email,
//     ip_address and username also go, hashed alike, to the attributes
//     user.email, user.ip_address and user.username. Sentry's "user" tag is
//     dropped. User fields are never logged.
//   - CustomerID: the first of Config.CustomerTags the event has.
//   - TraceID: contexts.trace.trace_id.
//   - SampleRate: the project's sample_rate (default 1), or the tag named
//     by Config.SampleRateTag. Sentry SDKs sample errors on the client
//     (sentry-go's ClientOptions.SampleRate) and send no trace of the rate:
//     the envelope header's trace.sample_rate is the dynamic sampling
//     context's rate, which is the *traces* sample rate and does not apply
//     to error events, so it is not used.
//   - Level: debug, info, warning, error or fatal (aliases accepted),
//     default error.
//   - Attributes: the event's tags (except environment, release, level,
//     dist and user, which are fields or personal data), evaluated feature
//     flags from contexts.flags.values as flag.<name> = "true"/"false", the
//     top in-app frames innermost first as sentry.frames (one
//     "module.function (file:line)" per line, Config.MaxFrames of them),
//     and sentry.project, sentry.event_id, sentry.issue_id, sentry.platform,
//     sentry.sdk, sentry.transaction, sentry.handled and server_name.
//
// # Known gaps
//
// Sentry's REST API does not return the SDK's fingerprint array, only the
// hashes it grouped by; events pulled by the Poller therefore always get
// the computed fingerprint, which differs from the intake's for events
// whose SDK sets a custom fingerprint (the id, and so the stored row, is the
// same). Envelope attachments, minidumps and security reports are not
// turned into errors.
package sentry
