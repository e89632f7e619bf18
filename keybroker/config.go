package keybroker

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config is the `keybroker:` section of the configuration.
type Config struct {
	// ServerID names this broker; proofs must carry it in the signed
	// x-chancery-server-id header, so a proof made for another server is refused.
	ServerID string `yaml:"server_id"`

	// STSEndpoints is the allow-list of STS endpoints a proof may name (scheme, host and
	// optional port; no path). Empty means AWS's public STS endpoints (DefaultSTSEndpoints).
	STSEndpoints []string `yaml:"sts_endpoints"`

	// MaxClockSkew is how far a proof's signing time may be from now (default 15m).
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`

	// RotationOverlap is how long an identity's previous key stays valid after a new one
	// is issued (default 10m).
	RotationOverlap time.Duration `yaml:"rotation_overlap"`

	// SyncInterval bounds how stale another replica's view of a revocation can be when
	// notifications are lost: each replica re-reads changed keys this often (default 5s).
	SyncInterval time.Duration `yaml:"sync_interval"`

	// STSTimeout bounds each call to STS (default 10s).
	STSTimeout time.Duration `yaml:"sts_timeout"`

	// MaxKeysPerIdentity bounds the active keys of one identity (role): beyond it the
	// oldest are cut to RotationOverlap (default 1000). Clients that name themselves
	// (x-chancery-client-id) rotate their own keys; this bounds the rest.
	MaxKeysPerIdentity int `yaml:"max_keys_per_identity"`

	// MaxConcurrentSTS bounds the STS calls in flight; an exchange waits at most a
	// second for a slot, then gets 503 (default 32).
	MaxConcurrentSTS int `yaml:"max_concurrent_sts"`

	// ExchangesPerClientMinute limits exchanges per client IP address (default 60; -1
	// turns the limit off, e.g. behind a load balancer that hides client addresses).
	ExchangesPerClientMinute int `yaml:"exchanges_per_client_minute"`

	// Bindings map caller ARNs to tenants. For the tenant a proof asks for, an exact
	// match wins, else the longest matching wildcard pattern.
	Bindings []Binding `yaml:"bindings"`
}

// Binding grants API keys for a tenant to the identities whose ARN matches Role.
type Binding struct {
	// Role is an IAM ARN, exact or ending in '*' (e.g.
	// arn:aws:iam::123456789012:role/web-*). Assumed-role sessions are matched as their
	// role: arn:aws:iam::ACCOUNT:role/NAME (STS does not report the role's path).
	Role   string        `yaml:"role"`
	Tenant string        `yaml:"tenant"`
	TTL    time.Duration `yaml:"ttl"`    // key lifetime (default 24h)
	Scopes []string      `yaml:"scopes"` // what the key may do, e.g. secrets:read
}

// Defaults.
const (
	DefaultMaxClockSkew    = 15 * time.Minute
	DefaultRotationOverlap = 10 * time.Minute
	DefaultSyncInterval    = 5 * time.Second
	DefaultSTSTimeout      = 10 * time.Second
	DefaultKeyTTL          = 24 * time.Hour
	maxKeyTTL              = 90 * 24 * time.Hour
)

// DefaultSTSEndpoints returns AWS's public STS endpoints: the global one, each
// commercial region's, GovCloud's and China's.
func DefaultSTSEndpoints() []string {
	// The commercial regions with a regional STS endpoint.
	regions := []string{
		"us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-east-2",
		"ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
		"ap-southeast-4", "ap-southeast-5", "ap-southeast-7", "ap-northeast-1", "ap-northeast-2",
		"ap-northeast-3", "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-west-1",
		"eu-west-2", "eu-west-3", "eu-south-1", "eu-south-2", "eu-north-1", "il-central-1",
		"me-south-1", "me-central-1", "mx-central-1", "sa-east-1",
	}
	eps := []string{"https://sts.amazonaws.com"}
	for _, r := range regions {
		eps = append(eps, "https://sts."+r+".amazonaws.com")
	}
	return append(eps,
		"https://sts.us-gov-west-1.amazonaws.com", "https://sts.us-gov-east-1.amazonaws.com",
		"https://sts.cn-north-1.amazonaws.com.cn", "https://sts.cn-northwest-1.amazonaws.com.cn",
	)
}

// withDefaults fills what the file left out.
func (c Config) withDefaults() Config {
	if len(c.STSEndpoints) == 0 {
		c.STSEndpoints = DefaultSTSEndpoints()
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = DefaultMaxClockSkew
	}
	if c.RotationOverlap == 0 {
		c.RotationOverlap = DefaultRotationOverlap
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.STSTimeout == 0 {
		c.STSTimeout = DefaultSTSTimeout
	}
	if c.MaxKeysPerIdentity == 0 {
		c.MaxKeysPerIdentity = 1000
	}
	if c.MaxConcurrentSTS == 0 {
		c.MaxConcurrentSTS = 32
	}
	if c.ExchangesPerClientMinute == 0 {
		c.ExchangesPerClientMinute = 60
	}
	bs := make([]Binding, len(c.Bindings))
	for i, b := range c.Bindings {
		if b.TTL == 0 {
			b.TTL = DefaultKeyTTL
		}
		bs[i] = b
	}
	c.Bindings = bs
	return c
}

// Validate reports every problem in the section, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("keybroker."+format, args...)) }
	if c.ServerID == "" {
		bad("server_id: required (proofs must name this server)")
	} else if strings.ContainsAny(c.ServerID, " \t\r\n") {
		bad("server_id: %q must not contain whitespace", c.ServerID)
	}
	for i, ep := range c.STSEndpoints {
		if _, err := normalizeEndpoint(ep); err != nil {
			bad("sts_endpoints[%d]: %v", i, err)
		}
	}
	if c.MaxClockSkew < 0 || c.MaxClockSkew > time.Hour {
		bad("max_clock_skew: %s is outside 0..1h", c.MaxClockSkew)
	}
	if c.RotationOverlap < 0 {
		bad("rotation_overlap: must not be negative")
	}
	if c.SyncInterval < 0 {
		bad("sync_interval: must not be negative")
	}
	if c.STSTimeout < 0 {
		bad("sts_timeout: must not be negative")
	}
	if c.MaxKeysPerIdentity < 0 {
		bad("max_keys_per_identity: must not be negative")
	}
	if c.MaxConcurrentSTS < 0 {
		bad("max_concurrent_sts: must not be negative")
	}
	if c.ExchangesPerClientMinute < -1 {
		bad("exchanges_per_client_minute: -1 (no limit) or a positive number")
	}
	if len(c.Bindings) == 0 {
		bad("bindings: none configured, so no identity could get a key")
	}
	seen := map[string]int{}
	for i, b := range c.Bindings {
		if err := validatePattern(b.Role); err != nil {
			bad("bindings[%d].role: %v", i, err)
		} else if j, dup := seen[b.Role+"\x00"+b.Tenant]; dup {
			bad("bindings[%d].role: %q already bound to tenant %q by bindings[%d]", i, b.Role, b.Tenant, j)
		} else {
			seen[b.Role+"\x00"+b.Tenant] = i
		}
		if b.Tenant == "" {
			bad("bindings[%d].tenant: required", i)
		}
		if b.TTL < 0 || b.TTL > maxKeyTTL {
			bad("bindings[%d].ttl: %s is outside 0..%s", i, b.TTL, maxKeyTTL)
		}
		for j, s := range b.Scopes {
			if s == "" || strings.ContainsAny(s, " \t\r\n") {
				bad("bindings[%d].scopes[%d]: %q is empty or has whitespace", i, j, s)
			}
		}
	}
	return errors.Join(errs...)
}

func validatePattern(p string) error {
	if !strings.HasPrefix(p, "arn:") {
		return fmt.Errorf("%q is not an ARN (arn:...)", p)
	}
	if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
		return fmt.Errorf("%q: '*' is only allowed at the end", p)
	}
	if parts := strings.SplitN(p, ":", 6); len(parts) < 6 && !strings.HasSuffix(p, "*") {
		return fmt.Errorf("%q is not a complete ARN (arn:partition:service:region:account:resource)", p)
	}
	return nil
}

// normalizeEndpoint reduces an STS endpoint URL to scheme://host[:port], refusing
// anything else (paths, queries, credentials), so allow-list checks compare like with like.
func normalizeEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a URL")
	}
	raw = u.Redacted() // never repeat a password in an error
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("%q: scheme must be https (or http for a local emulator)", raw)
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: must be scheme://host[:port] only", raw)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}
