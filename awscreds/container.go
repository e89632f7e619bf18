package awscreds

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"
)

const (
	containerRelativeHost   = "169.254.170.2"
	defaultContainerTimeout = 5 * time.Second
	containerMaxAttempts    = 3
)

// Container is a Provider for the ECS (and EKS Pod Identity) container credentials
// endpoint, configured by the environment as in the SDKs:
//
//   - AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, a path on http://169.254.170.2, or
//   - AWS_CONTAINER_CREDENTIALS_FULL_URI, which must be https or name a loopback
//     address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23;
//   - AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read at every Retrieve) or
//     AWS_CONTAINER_AUTHORIZATION_TOKEN, sent as the Authorization header.
//
// A FULL_URI host name is resolved once per Retrieve and the connection is made to the
// address that was checked, so DNS cannot swap in another host between check and use.
//
// A Container must not be copied after first use.
type Container struct {
	// HTTPClient sends the requests; nil means a client of the package's own that
	// uses no proxy and follows no redirect.
	HTTPClient *http.Client
	// Timeout bounds each attempt; zero means 5s.
	Timeout time.Duration

	client metadataClient
}

// Retrieve fetches credentials from the endpoint.
func (c *Container) Retrieve(ctx context.Context) (Credentials, error) {
	target, host, err := containerEndpoint(ctx)
	if err != nil {
		return Credentials{}, fmt.Errorf("container credentials: %w", err)
	}
	token, err := containerAuthToken()
	if err != nil {
		return Credentials{}, fmt.Errorf("container credentials: %w", err)
	}
	hc := c.client.get(c.HTTPClient)
	timeout := cmp.Or(c.Timeout, defaultContainerTimeout)
	bo := backoff{base: 100 * time.Millisecond, max: time.Second}
	var lastErr error
	for attempt := range containerMaxAttempts {
		if attempt > 0 {
			if err := sleep(ctx, bo.delay(attempt-1)); err != nil {
				return Credentials{}, fmt.Errorf("container credentials: %w (last error: %w)", err, lastErr)
			}
		}
		creds, retry, err := c.fetch(ctx, hc, timeout, target, host, token)
		if err == nil {
			return creds, nil
		}
		lastErr = fmt.Errorf("container credentials from %s: %w", redactURL(target, host), err)
		if !retry || ctx.Err() != nil {
			break
		}
	}
	return Credentials{}, lastErr
}

func (c *Container) fetch(ctx context.Context, hc *http.Client, timeout time.Duration, target *url.URL, host, token string) (Credentials, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return Credentials{}, false, err
	}
	req.Host = host
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, body, err := doBounded(hc, req, maxMetadataResponse)
	if err != nil {
		return Credentials{}, !connectionRefused(err), err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Code, Message string }
		_ = json.Unmarshal(body, &e)
		err := fmt.Errorf("HTTP %d", resp.StatusCode)
		if e.Code != "" || e.Message != "" {
			err = fmt.Errorf("HTTP %d: %s: %s", resp.StatusCode, truncate(e.Code, 64), truncate(e.Message, 256))
		}
		return Credentials{}, resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, err
	}
	creds, err := parseCredentialsDocument(body, SourceContainer)
	return creds, false, err
}

// containerEndpoint returns the URL to connect to, with a checked IP address as its
// host, and the Host header to send.
func containerEndpoint(ctx context.Context) (*url.URL, string, error) {
	if rel := os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel != "" {
		if !strings.HasPrefix(rel, "/") {
			return nil, "", errors.New("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does not start with /")
		}
		u, err := url.Parse("http://" + containerRelativeHost + rel)
		if err != nil {
			return nil, "", errors.New("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not a valid path")
		}
		return u, u.Host, nil
	}
	full := os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	if full == "" {
		return nil, "", fmt.Errorf("neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor _FULL_URI set: %w", ErrNotConfigured)
	}
	u, err := url.Parse(full)
	if err != nil || u.Host == "" {
		return nil, "", errors.New("AWS_CONTAINER_CREDENTIALS_FULL_URI is not a valid URL")
	}
	switch u.Scheme {
	case "https":
		return u, u.Host, nil
	case "http":
	default:
		return nil, "", fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI scheme %q is not http or https", u.Scheme)
	}
	host := u.Host
	addr, err := allowedContainerAddr(ctx, u.Hostname())
	if err != nil {
		return nil, "", err
	}
	pinned := *u
	pinned.Host = net.JoinHostPort(addr.String(), cmp.Or(u.Port(), "80"))
	return &pinned, host, nil
}

// allowedContainerAddr resolves host and returns its address if every address it has
// is allowed for plain http: a loopback address or one of the ECS and EKS agents'.
func allowedContainerAddr(ctx context.Context, host string) (netip.Addr, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
			return netip.Addr{}, fmt.Errorf("resolving AWS_CONTAINER_CREDENTIALS_FULL_URI host %q: %w", host, err)
		}
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI host %q has no address", host)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if !a.IsLoopback() && !isContainerAgentAddr(a) {
			return netip.Addr{}, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI host %q (%s) is not allowed over http: use https, a loopback address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23", host, a)
		}
	}
	return addrs[0].Unmap(), nil
}

// isContainerAgentAddr reports whether a is the address of the ECS agent
// (169.254.170.2) or the EKS Pod Identity agent (169.254.170.23, fd00:ec2::23).
func isContainerAgentAddr(a netip.Addr) bool {
	switch a {
	case netip.AddrFrom4([4]byte{169, 254, 170, 2}),
		netip.AddrFrom4([4]byte{169, 254, 170, 23}),
		netip.AddrFrom16([16]byte{0xfd, 0x00, 0x0e, 0xc2, 15: 0x23}):
		return true
	}
	return false
}

// containerAuthToken returns the Authorization header value: the token file wins over
// the variable, as in the SDKs, and is read each time because it may be rotated.
func containerAuthToken() (string, error) {
	var token string
	if path := os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); path != "" {
		t, err := readTokenFile(path, maxMetadataResponse)
		if err != nil {
			return "", fmt.Errorf("authorization token: %w", err)
		}
		token = t
	} else {
		token = os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
	}
	if strings.ContainsAny(token, "\r\n") {
		return "", errors.New("authorization token contains a line break")
	}
	return token, nil
}

// redactURL names the endpoint for an error: scheme, host and path, no query (which
// could carry a token).
func redactURL(u *url.URL, host string) string {
	return u.Scheme + "://" + host + u.EscapedPath()
}
