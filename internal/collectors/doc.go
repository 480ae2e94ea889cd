// Package collectors groups correlator's collectors, one subpackage per
// source. Each turns what its source says into event records and hands
// them to a writer; none talks to ClickHouse directly.
//
// The change collectors:
//
//	github    deployment_status (and release) webhooks; a poller over the deployments API
//	argocd    Argo CD notifications (sync succeeded or failed)
//	flags     LaunchDarkly and Unleash flag change webhooks
//	changes   the generic change webhook, `correlator mark`, and what they all share:
//	          the change identity and the Merger that makes one change of several sources
//
// They write through one changes.MergingWriter around the store's writer,
// so that a deploy reported by GitHub, by the Argo CD sync that performed
// it and by a `correlator mark` from CI is one change listing its three
// sources. For mark to merge too, the ingest API's writer is wrapped in the
// same MergingWriter; changes ingested with ids of their own (imports,
// generated scenarios) pass through it untouched. Their configuration is
// config.Changes.
//
// The receivers authenticate their senders themselves: GitHub and
// LaunchDarkly sign their bodies (and cannot send a bearer token), Argo
// CD, Unleash and the generic webhook present a shared secret. So they are
// served beside the API rather than behind its bearer tokens, at paths
// such as /collect/github, /collect/argocd, /collect/launchdarkly,
// /collect/unleash and /collect/webhook/{name}. A receiver whose secret is
// optional and unset accepts anyone who can reach it.
package collectors
