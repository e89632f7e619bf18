package sigv4

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// PayloadMode says how a Transport signs request bodies.
type PayloadMode int

const (
	// PayloadSigned hashes every body into the signature. A body that cannot be re-read
	// is read once into memory, or a temporary file past Transport.SpoolThreshold.
	PayloadSigned PayloadMode = iota
	// PayloadUnsigned signs UNSIGNED-PAYLOAD and streams the body untouched. Only
	// services that allow it (S3) accept it.
	PayloadUnsigned
	// PayloadStreaming signs the body chunk by chunk as it is sent (aws-chunked, S3
	// only). A body of unknown length is signed as PayloadSigned.
	PayloadStreaming
)

// maxErrorPeek bounds how much of an error reply is read to look for a clock-skew error.
const maxErrorPeek = 16 << 10

// Transport is an http.RoundTripper that signs every request with SigV4 using credentials
// from a CredentialsProvider, then sends it with Base.
//
// The service and region are Service and Region when set, and otherwise inferred from
// the request's host (see InferScope); a request to a host that is neither is refused
// with an error. The caller's request is never modified: it is cloned before signing.
//
// When a reply says the request's time was too far from the server's clock, Transport
// remembers the difference for the requests that follow and, if the body can be sent
// again, retries once.
//
// A Transport must not be copied after first use.
type Transport struct {
	// Base sends the signed requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Credentials are retrieved for every request; wrap a slow provider in a cache.
	Credentials CredentialsProvider
	// Service and Region override what is inferred from the host.
	Service, Region string
	// Payload selects how bodies are signed; see PayloadMode.
	Payload PayloadMode
	// SpoolThreshold and SpoolDir: see Signer.
	SpoolThreshold int64
	SpoolDir       string
	// DisableClockSkewRetry turns off the retry after a clock-skew error; the skew is
	// still learned.
	DisableClockSkewRetry bool
	// Logger gets a line when a clock skew is learned; nil means slog.Default.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	once    sync.Once
	std, s3 *Signer
	skew    atomic.Int64 // time.Duration to add to Now
}

func (t *Transport) init() {
	t.once.Do(func() {
		t.std = &Signer{SpoolThreshold: t.SpoolThreshold, SpoolDir: t.SpoolDir}
		t.s3 = &Signer{SpoolThreshold: t.SpoolThreshold, SpoolDir: t.SpoolDir,
			DisableURIPathEscaping: true, DisablePathNormalization: true, ContentSHA256Header: true}
	})
}

// ClockSkewOffset returns the clock skew the transport has learned.
func (t *Transport) ClockSkewOffset() time.Duration { return time.Duration(t.skew.Load()) }

func (t *Transport) now() time.Time {
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	return now()
}

func (t *Transport) logger() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.Default()
}

// scope returns the service and region to sign a request to host with.
func (t *Transport) scope(host string) (service, region string, err error) {
	if t.Service != "" && t.Region != "" {
		return t.Service, t.Region, nil
	}
	service, region, err = InferScope(host)
	if err != nil {
		return "", "", fmt.Errorf("sigv4: no service and region to sign with (configure them): %w", err)
	}
	if t.Service != "" {
		service = t.Service
	}
	if t.Region != "" {
		region = t.Region
	}
	return service, region, nil
}

// isS3 reports whether service signs with the S3 rules.
func isS3(service string) bool {
	return service == "s3" || service == "s3-object-lambda" || service == "s3-outposts" || service == "s3express"
}

func hasBody(r *http.Request) bool { return r.Body != nil && r.Body != http.NoBody }

// RoundTrip signs a clone of req and sends it.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.init()
	host := req.Host
	if host == "" && req.URL != nil {
		host = req.URL.Host
	}
	fail := func(err error) (*http.Response, error) {
		if req.Body != nil {
			req.Body.Close() // RoundTrip owns the body, even on error
		}
		return nil, err
	}
	if t.Credentials == nil {
		return fail(errors.New("sigv4: Transport has no Credentials"))
	}
	service, region, err := t.scope(host)
	if err != nil {
		return fail(err)
	}
	creds, err := t.Credentials.Retrieve(req.Context())
	if err != nil {
		return fail(fmt.Errorf("sigv4: retrieving credentials to sign a request to %s: %w", host, err))
	}
	r := req.Clone(req.Context())
	hash, err := t.sign(r, creds, service, region, "")
	if err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	release := holdBody(r.Body) // keeps a spooled body for a retry
	defer release()
	resp, err := t.base().RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
		return resp, nil
	}
	peek, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorPeek))
	skew, ok := ClockSkew(resp, peek, t.now())
	if !ok {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
		return resp, nil
	}
	// The Date header has a resolution of a second; finer would be noise.
	skew = skew.Round(time.Second)
	t.skew.Store(int64(skew))
	t.logger().Info("sigv4: learned clock skew from a reply", "host", host, "skew", skew)
	if t.DisableClockSkewRetry {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
		return resp, nil
	}
	retry, err := t.retryRequest(req, r, creds, service, region, hash)
	if err != nil {
		// Not retryable: the caller gets the refusal.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	return t.base().RoundTrip(retry)
}

// retryRequest builds and signs the second attempt from the original request (or the
// spooled copy of its body) with the learned clock skew.
func (t *Transport) retryRequest(orig, sent *http.Request, creds Credentials, service, region, hash string) (*http.Request, error) {
	r := orig.Clone(orig.Context())
	switch {
	case !hasBody(orig):
	case orig.GetBody != nil:
		b, err := orig.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = b
	case sent.GetBody != nil: // spooled by the first signature
		b, err := sent.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body, r.GetBody, r.ContentLength = b, sent.GetBody, sent.ContentLength
	default:
		return nil, errors.New("sigv4: request body cannot be sent again")
	}
	if hash == StreamingPayload {
		hash = "" // re-encoded from the start
	}
	if _, err := t.sign(r, creds, service, region, hash); err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	return r, nil
}

// sign signs r in place according to t.Payload and returns the payload hash signed.
func (t *Transport) sign(r *http.Request, creds Credentials, service, region, hash string) (string, error) {
	s := t.std
	if isS3(service) {
		s = t.s3
	}
	if isS3(service) {
		setStrictPath(r.URL) // r is our clone; its URL was copied by Clone
	}
	p := Params{Service: service, Region: region, Time: t.now().Add(t.ClockSkewOffset()), PayloadHash: hash}
	if hasBody(r) {
		switch {
		case t.Payload == PayloadStreaming && r.ContentLength > 0:
			return StreamingPayload, s.SignStreaming(r, creds, p, 0)
		case t.Payload == PayloadUnsigned:
			p.PayloadHash = UnsignedPayload
		}
	}
	return s.signHeader(r, creds, p)
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}
