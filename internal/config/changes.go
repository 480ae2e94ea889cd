package config

// The change collectors' configuration. The types live here, not in the
// collector packages, so that Config can hold them without an import cycle
// (the collectors import this package for Secret and Duration); each
// collector package aliases its type and documents what the fields mean:
//
//	internal/collectors/github   GitHub
//	internal/collectors/argocd   ArgoCD
//	internal/collectors/flags    Flags
//	internal/collectors/changes  ChangeWebhook, ChangeMerge
//
// The collectors check their configuration when they are built and report
// every problem at once, naming the YAML path.

// Changes groups the change collectors, for a `changes:` section.
type Changes struct {
	GitHub   GitHub                   `yaml:"github" json:"github"`
	ArgoCD   ArgoCD                   `yaml:"argocd" json:"argocd"`
	Flags    Flags                    `yaml:"flags" json:"flags"`
	Webhooks map[string]ChangeWebhook `yaml:"webhooks" json:"webhooks"`
	Merge    ChangeMerge              `yaml:"merge" json:"merge"`
}

// GitHub configures the GitHub deployment collector (webhook and poller).
type GitHub struct {
	Secret              Secret                      `yaml:"secret" json:"secret"`
	Token               Secret                      `yaml:"token" json:"token"`
	APIURL              string                      `yaml:"api_url" json:"api_url"`
	Repositories        map[string]GitHubRepository `yaml:"repositories" json:"repositories"`
	UnknownRepositories string                      `yaml:"unknown_repositories" json:"unknown_repositories"`
	Version             string                      `yaml:"version" json:"version"`
	Releases            string                      `yaml:"releases" json:"releases"`
	PollInterval        Duration                    `yaml:"poll_interval" json:"poll_interval"`
	Backfill            Duration                    `yaml:"backfill" json:"backfill"`
}

// GitHubRepository maps one repository to a service.
type GitHubRepository struct {
	Service     string `yaml:"service" json:"service"`
	Environment string `yaml:"environment" json:"environment"`
}

// ArgoCD configures the Argo CD notifications receiver.
type ArgoCD struct {
	Secret              Secret                       `yaml:"secret" json:"secret"`
	Environment         string                       `yaml:"environment" json:"environment"`
	UnknownApplications string                       `yaml:"unknown_applications" json:"unknown_applications"`
	Applications        map[string]ArgoCDApplication `yaml:"applications" json:"applications"`
	MaxBody             int64                        `yaml:"max_body_bytes" json:"max_body_bytes"`
}

// ArgoCDApplication maps one Argo CD application.
type ArgoCDApplication struct {
	Service     string `yaml:"service" json:"service"`
	Environment string `yaml:"environment" json:"environment"`
	Image       string `yaml:"image" json:"image"`
	Version     string `yaml:"version" json:"version"`
}

// Flags configures the feature flag receivers.
type Flags struct {
	LaunchDarkly   FlagProvider `yaml:"launchdarkly" json:"launchdarkly"`
	Unleash        FlagProvider `yaml:"unleash" json:"unleash"`
	Services       []FlagRule   `yaml:"services" json:"services"`
	ServiceTag     string       `yaml:"service_tag" json:"service_tag"`
	DefaultService string       `yaml:"default_service" json:"default_service"`
	MaxBody        int64        `yaml:"max_body_bytes" json:"max_body_bytes"`
}

// FlagProvider configures one flag provider's webhook.
type FlagProvider struct {
	Secret       Secret            `yaml:"secret" json:"secret"`
	Environments map[string]string `yaml:"environments" json:"environments"`
	SiteURL      string            `yaml:"site_url" json:"site_url"`
}

// FlagRule maps flags to a service; every condition given must hold.
type FlagRule struct {
	Prefix  string `yaml:"prefix" json:"prefix"`
	Project string `yaml:"project" json:"project"`
	Tag     string `yaml:"tag" json:"tag"`
	Service string `yaml:"service" json:"service"`
}

// ChangeWebhook configures one generic change webhook.
type ChangeWebhook struct {
	// Name is the webhook's key in Changes.Webhooks, set by the caller.
	Name     string          `yaml:"-" json:"-"`
	Secret   Secret          `yaml:"secret" json:"secret"`
	Template *ChangeTemplate `yaml:"template" json:"template"`
	MaxBody  int64           `yaml:"max_body_bytes" json:"max_body_bytes"`
}

// ChangeTemplate maps a foreign JSON payload onto changes.
type ChangeTemplate struct {
	Items  string            `yaml:"items" json:"items"`
	Fields map[string]string `yaml:"fields" json:"fields"`
	Static map[string]string `yaml:"static" json:"static"`
}

// ChangeMerge bounds the merging of several sources into one change.
type ChangeMerge struct {
	Window    Duration `yaml:"window" json:"window"`
	Streams   int      `yaml:"streams" json:"streams"`
	PerStream int      `yaml:"per_stream" json:"per_stream"`
}
