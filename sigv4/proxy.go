package sigv4

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Default bounds on a request body the proxy forwards. Most AWS APIs take requests of
// a few MiB at most, and a signed body of unknown length is spooled to disk before it
// is sent, so the general bound is small; S3 takes up to 5 GiB in a single PUT.
const (
	DefaultMaxProxyBody   = 10 << 20
	DefaultMaxProxyBodyS3 = 5 << 30
)

// ProxyConfig configures NewProxy.
type ProxyConfig struct {
	// Upstream is the AWS endpoint requests go to, e.g. "https://sqs.us-east-1.amazonaws.com".
	Upstream string
	// Credentials sign every request.
	Credentials CredentialsProvider
	// Service and Region override what is inferred from Upstream's host; for a host
	// that is not an AWS endpoint both are required.
	Service, Region string
	// Payload selects how bodies are signed; PayloadUnsigned or PayloadStreaming let
	// S3 uploads stream without being spooled.
	Payload PayloadMode
	// SpoolThreshold and SpoolDir: see Signer.
	SpoolThreshold int64
	SpoolDir       string
	// MaxBodyBytes bounds a request body; zero means DefaultMaxProxyBodyS3 when the
	// signing service is S3 and DefaultMaxProxyBody otherwise.
	MaxBodyBytes int64
	// AllowedHosts are further Host header values the proxy answers to, for clients
	// that reach it by a name when it listens on a non-loopback address: "host" for
	// any port, "host:port" for one. See NewProxy.
	AllowedHosts []string
	// Transport sends the signed requests upstream; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Logger gets upstream failures; nil means slog.Default.
	Logger *slog.Logger
}

// authHeaders are what a client may have signed its own request with; the proxy signs
// afresh, so they are dropped.
var authHeaders = []string{headerAuthorization, headerDate, headerSecurityToken, headerContentSHA256}

// NewProxy returns a signing reverse proxy: every request is sent to Upstream (its path
// appended to Upstream's), signed with SigV4. Bodies are streamed; hop-by-hop headers
// are dropped; any Authorization, X-Amz-Date, X-Amz-Security-Token or
// X-Amz-Content-Sha256 header and presigning query parameters of the incoming request
// are replaced. A configuration that cannot work (no credentials, an upstream whose
// service and region are neither known nor given) is an error here, not at the first
// request.
//
// Whoever reaches the proxy acts with its credentials, and a web browser on the same
// machine reaches it too. So that a web page cannot use it, the proxy refuses with 403
// Forbidden:
//   - a request with an Origin or Referer header, or with Sec-Fetch-Site cross-site
//     or same-site: browsers send these on requests a page makes to another origin,
//     including the simple form POSTs that are exactly the AWS Query API's format;
//   - a request whose Host is not one of localhost, a loopback IP address, the
//     address the connection arrived on, or ProxyConfig.AllowedHosts: a page on a
//     name the attacker controls that is re-bound to 127.0.0.1 (DNS rebinding) is
//     same-origin to the browser, so could read replies, but sends its own name as
//     Host. The port is not compared for these names: rebinding needs a name that
//     an attacker controls, whatever the port, and port forwarding changes it.
func NewProxy(cfg ProxyConfig) (http.Handler, error) {
	up, err := url.Parse(cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("sigv4: proxy upstream %q: %w", cfg.Upstream, err)
	}
	if (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		return nil, fmt.Errorf("sigv4: proxy upstream %q must be an absolute http or https URL", cfg.Upstream)
	}
	if cfg.Credentials == nil {
		return nil, errors.New("sigv4: proxy needs Credentials")
	}
	t := &Transport{
		Base:           cfg.Transport,
		Credentials:    cfg.Credentials,
		Service:        cfg.Service,
		Region:         cfg.Region,
		Payload:        cfg.Payload,
		SpoolThreshold: cfg.SpoolThreshold,
		SpoolDir:       cfg.SpoolDir,
		Logger:         cfg.Logger,
	}
	service, _, err := t.scope(up.Host)
	if err != nil {
		return nil, fmt.Errorf("sigv4: proxy upstream %q: %w", cfg.Upstream, err)
	}
	hosts, err := newHostFilter(cfg.AllowedHosts)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	maxBody := cfg.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxProxyBody
		if isS3(service) {
			maxBody = DefaultMaxProxyBodyS3
		}
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			for _, h := range authHeaders {
				pr.Out.Header.Del(h)
			}
			pr.Out.URL.RawQuery = withoutParams(pr.Out.URL.RawQuery, presignParams)
		},
		Transport:     t,
		FlushInterval: 100 * time.Millisecond, // stream replies (e.g. S3 GETs) as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logger.Warn("sigv4 proxy: upstream request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			status := http.StatusBadGateway
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				status = http.StatusRequestEntityTooLarge
			}
			http.Error(w, "sigv4 proxy: "+http.StatusText(status), status)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if why := browserRequest(r.Header); why != "" {
			logger.Warn("sigv4 proxy: refused a request made by a web page", "reason", why, "method", r.Method, "path", r.URL.Path)
			http.Error(w, "sigv4 proxy: requests from web pages are refused", http.StatusForbidden)
			return
		}
		if !hosts.allowed(r) {
			logger.Warn("sigv4 proxy: refused a request for another host", "host", r.Host, "method", r.Method, "path", r.URL.Path)
			http.Error(w, "sigv4 proxy: Host not allowed", http.StatusForbidden)
			return
		}
		if strings.HasPrefix(r.Header.Get(headerContentSHA256), "STREAMING-") {
			// A chunk-signed body carries its client's signatures; it cannot be re-signed.
			http.Error(w, "sigv4 proxy: chunk-signed (aws-chunked) request bodies are not supported", http.StatusBadRequest)
			return
		}
		if r.ContentLength > maxBody {
			http.Error(w, "sigv4 proxy: request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		rp.ServeHTTP(w, r)
	}), nil
}

// browserRequest says why h is the header of a request a web page made to another
// origin, or returns "" when it is not. Non-browser clients send neither header.
func browserRequest(h http.Header) string {
	if _, ok := h["Origin"]; ok {
		return "Origin header"
	}
	// Browsers without Fetch Metadata still send a Referer on the cross-site GETs an
	// <img> or <script> makes (unless the page suppresses it: a residual risk for such
	// browsers, documented in README).
	if _, ok := h["Referer"]; ok {
		return "Referer header"
	}
	switch strings.ToLower(h.Get("Sec-Fetch-Site")) {
	case "cross-site", "same-site":
		return "Sec-Fetch-Site " + h.Get("Sec-Fetch-Site")
	}
	return ""
}

// hostFilter decides which Host header values the proxy answers to.
type hostFilter struct {
	anyPort map[string]bool // lower-case host names and IP addresses, any port
	exact   map[string]bool // lower-case "host:port"
}

func newHostFilter(allowed []string) (hostFilter, error) {
	f := hostFilter{
		anyPort: map[string]bool{"localhost": true},
		exact:   map[string]bool{},
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" || strings.ContainsAny(a, "/?#@ ") {
			return hostFilter{}, fmt.Errorf("sigv4: proxy allowed host %q: want a host name or host:port", a)
		}
		if host, port, err := net.SplitHostPort(a); err == nil {
			if host == "" || port == "" {
				return hostFilter{}, fmt.Errorf("sigv4: proxy allowed host %q: want a host name or host:port", a)
			}
			f.exact[net.JoinHostPort(host, port)] = true
			continue
		}
		f.anyPort[strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")] = true
	}
	return f, nil
}

// allowed reports whether r's Host is one the proxy answers to.
func (f hostFilter) allowed(r *http.Request) bool {
	hostport := strings.ToLower(r.Host)
	if hostport == "" {
		return false
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
		if f.exact[hostport] {
			return true
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if f.anyPort[host] {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	// The address the client connected to, named as such (a proxy listening on a
	// LAN address, reached by IP): an IP address cannot be re-bound.
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if tcp, ok := la.(*net.TCPAddr); ok && tcp.IP.Equal(ip) {
			return true
		}
	}
	return false
}
