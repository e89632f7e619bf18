package sigv4

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// PresignOptions configure PresignURL.
type PresignOptions struct {
	// Method is the HTTP method the URL is for; "" means GET.
	Method string
	// Service and Region override what is inferred from the URL's host.
	Service, Region string
	// Expires is how long the URL stays valid; zero means 15 minutes.
	Expires time.Duration
	// Time is the signing time; zero means now.
	Time time.Time
}

// PresignURL returns rawURL presigned with credentials from provider: anyone holding it
// can make that one request until it expires. The body is never signed
// (UNSIGNED-PAYLOAD), as S3 requires of presigned URLs.
func PresignURL(ctx context.Context, provider CredentialsProvider, rawURL string, o PresignOptions) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("sigv4: presign: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("sigv4: presign: %q is not an absolute http or https URL", rawURL)
	}
	t := Transport{Service: o.Service, Region: o.Region}
	service, region, err := t.scope(u.Host)
	if err != nil {
		return "", err
	}
	if o.Expires == 0 {
		o.Expires = 15 * time.Minute
	}
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	creds, err := provider.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("sigv4: presign: retrieving credentials: %w", err)
	}
	req := &http.Request{Method: o.Method, URL: u, Host: u.Host, Header: http.Header{}}
	s := &Signer{}
	if isS3(service) {
		s.DisableURIPathEscaping, s.DisablePathNormalization = true, true
		setStrictPath(u)
	}
	signed, err := s.Presign(req, creds, Params{Service: service, Region: region, PayloadHash: UnsignedPayload, Expires: o.Expires, Time: o.Time})
	if err != nil {
		return "", err
	}
	return signed.String(), nil
}
