package awscreds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	imdsDefaultEndpoint     = "http://169.254.169.254"
	imdsDefaultEndpointIPv6 = "http://[fd00:ec2::254]"
	imdsTokenPath           = "/latest/api/token"
	imdsCredentialsPath     = "/latest/meta-data/iam/security-credentials/"
	defaultIMDSTokenTTL     = 6 * time.Hour
	defaultIMDSTimeout      = time.Second
	defaultIMDSAttempts     = 3
)

// IMDS is a Provider for the role credentials of an EC2 instance, using IMDSv2: it PUTs
// for a session token (with a TTL header), reads the role name, then the role's
// credentials. The token is cached until shortly before its TTL ends and fetched again
// when the service answers 401. IMDSv1 (no token) is not used.
//
// AWS_EC2_METADATA_DISABLED=true disables it; AWS_EC2_METADATA_SERVICE_ENDPOINT, or
// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6, choose the endpoint when Endpoint is
// empty.
//
// An IMDS must not be copied after first use.
type IMDS struct {
	Endpoint string
	// HTTPClient sends the requests; nil means a client of the package's own that
	// uses no proxy and follows no redirect.
	HTTPClient *http.Client
	// Timeout bounds each request; zero means 1s.
	Timeout time.Duration
	// MaxAttempts bounds tries per request on server errors and timeouts; zero means 3.
	// A refused connection is never retried.
	MaxAttempts int
	// TokenTTL is the session token lifetime asked for; zero means 6h.
	TokenTTL time.Duration

	client       metadataClient
	mu           sync.Mutex // guards token and tokenExpires; never held across I/O
	token        string
	tokenExpires time.Time
}

// errIMDSUnauthorized marks a 401, on which the token is fetched again.
var errIMDSUnauthorized = errors.New("IMDS answered 401 Unauthorized")

// Retrieve fetches the instance role's credentials.
func (m *IMDS) Retrieve(ctx context.Context) (Credentials, error) {
	if imdsDisabled() {
		return Credentials{}, fmt.Errorf("imds: disabled by AWS_EC2_METADATA_DISABLED: %w", ErrNotConfigured)
	}
	base, err := m.endpoint()
	if err != nil {
		return Credentials{}, fmt.Errorf("imds: %w", err)
	}
	role, err := m.RoleName(ctx)
	if err != nil {
		return Credentials{}, err
	}
	body, err := m.get(ctx, base, imdsCredentialsPath+url.PathEscape(role))
	if err != nil {
		return Credentials{}, fmt.Errorf("imds: credentials of role %q: %w", role, err)
	}
	creds, err := parseCredentialsDocument(body, SourceIMDS)
	if err != nil {
		return Credentials{}, fmt.Errorf("imds: role %q: %w", role, err)
	}
	return creds, nil
}

// RoleName returns the name of the IAM role attached to the instance. It returns an
// error wrapping ErrNotConfigured when the instance has no role.
func (m *IMDS) RoleName(ctx context.Context) (string, error) {
	base, err := m.endpoint()
	if err != nil {
		return "", fmt.Errorf("imds: %w", err)
	}
	body, err := m.get(ctx, base, imdsCredentialsPath)
	var status *imdsStatusError
	if errors.As(err, &status) && status.code == http.StatusNotFound {
		return "", fmt.Errorf("imds: no IAM role attached to the instance: %w", ErrNotConfigured)
	}
	if err != nil {
		return "", fmt.Errorf("imds: role name: %w", err)
	}
	role, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	role = strings.TrimSpace(role)
	if role == "" {
		return "", fmt.Errorf("imds: no IAM role attached to the instance: %w", ErrNotConfigured)
	}
	return role, nil
}

func imdsDisabled() bool {
	return strings.EqualFold(os.Getenv("AWS_EC2_METADATA_DISABLED"), "true")
}

func (m *IMDS) endpoint() (string, error) {
	e := cmp.Or(m.Endpoint, os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
	if e == "" {
		switch mode := os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"); {
		case mode == "" || strings.EqualFold(mode, "IPv4"):
			e = imdsDefaultEndpoint
		case strings.EqualFold(mode, "IPv6"):
			e = imdsDefaultEndpointIPv6
		default:
			return "", fmt.Errorf("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE %q is not IPv4 or IPv6", mode)
		}
	}
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("endpoint %q is not an http(s) URL", e)
	}
	return strings.TrimRight(e, "/"), nil
}

// get reads path with a session token, fetching a new token once on 401.
func (m *IMDS) get(ctx context.Context, base, path string) ([]byte, error) {
	for try := 0; ; try++ {
		token, err := m.sessionToken(ctx, base)
		if err != nil {
			return nil, err
		}
		body, err := m.request(ctx, http.MethodGet, base+path, http.Header{"X-Aws-Ec2-Metadata-Token": {token}})
		if errors.Is(err, errIMDSUnauthorized) && try == 0 {
			m.dropToken(token)
			continue
		}
		return body, err
	}
}

// sessionToken returns the cached token or PUTs for a new one.
func (m *IMDS) sessionToken(ctx context.Context, base string) (string, error) {
	m.mu.Lock()
	token, expires := m.token, m.tokenExpires
	m.mu.Unlock()
	if token != "" && time.Now().Before(expires) {
		return token, nil
	}
	ttl := cmp.Or(m.TokenTTL, defaultIMDSTokenTTL)
	start := time.Now()
	body, err := m.request(ctx, http.MethodPut, base+imdsTokenPath, http.Header{
		"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {strconv.Itoa(int(ttl / time.Second))},
	})
	if err != nil {
		return "", fmt.Errorf("session token: %w", err)
	}
	token = strings.TrimSpace(string(body))
	if token == "" || strings.ContainsAny(token, "\r\n") {
		return "", errors.New("session token response is empty or malformed")
	}
	m.mu.Lock()
	// Expire early so that a token is never sent in its last moments.
	m.token, m.tokenExpires = token, start.Add(ttl-ttl/10)
	m.mu.Unlock()
	return token, nil
}

// dropToken forgets token unless another caller has already replaced it.
func (m *IMDS) dropToken(token string) {
	m.mu.Lock()
	if m.token == token {
		m.token = ""
	}
	m.mu.Unlock()
}

type imdsStatusError struct{ code int }

func (e *imdsStatusError) Error() string { return fmt.Sprintf("HTTP %d", e.code) }

// request sends one IMDS request with retries on server errors and timeouts.
func (m *IMDS) request(ctx context.Context, method, target string, header http.Header) ([]byte, error) {
	hc := m.client.get(m.HTTPClient)
	timeout := cmp.Or(m.Timeout, defaultIMDSTimeout)
	attempts := cmp.Or(m.MaxAttempts, defaultIMDSAttempts)
	bo := backoff{base: 50 * time.Millisecond, max: 500 * time.Millisecond}
	var lastErr error
	for attempt := range attempts {
		if attempt > 0 {
			if err := sleep(ctx, bo.delay(attempt-1)); err != nil {
				return nil, fmt.Errorf("%w (last error: %w)", err, lastErr)
			}
		}
		body, retry, err := m.once(ctx, hc, timeout, method, target, header)
		if err == nil {
			return body, nil
		}
		lastErr = err
		if !retry || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func (m *IMDS) once(ctx context.Context, hc *http.Client, timeout time.Duration, method, target string, header http.Header) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header = header
	resp, body, err := doBounded(hc, req, maxMetadataResponse)
	switch {
	case err != nil:
		return nil, !connectionRefused(err), err
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, false, errIMDSUnauthorized
	case resp.StatusCode != http.StatusOK:
		return nil, resp.StatusCode >= 500, &imdsStatusError{resp.StatusCode}
	}
	return body, false, nil
}
