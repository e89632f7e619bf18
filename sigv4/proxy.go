package sigv4

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// DefaultMaxProxyBody bounds a request body the proxy forwards: S3's limit for a single
// PUT.
const DefaultMaxProxyBody = 5 << 30

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
	// MaxBodyBytes bounds a request body; zero means DefaultMaxProxyBody.
	MaxBodyBytes int64
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
	if _, _, err := t.scope(up.Host); err != nil {
		return nil, fmt.Errorf("sigv4: proxy upstream %q: %w", cfg.Upstream, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	maxBody := cfg.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxProxyBody
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
