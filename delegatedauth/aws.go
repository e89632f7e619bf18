package delegatedauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/chancery/chancery/sigv4"
)

// Headers that bind a proof. Both are signed, so a proof cannot be re-aimed at another
// tenant or replayed at another server without breaking its signature.
const (
	// OrgIDHeader names the tenant the key is for; the name is Datadog's.
	OrgIDHeader = "X-Ddog-Org-Id"
	// ServerIDHeader names the broker the proof is meant for.
	ServerIDHeader = "X-Chancery-Server-Id"
	// ClientIDHeader names the client instance, so that a broker rotates the keys of
	// this client (and not of every workload sharing its role) when it gets a new one.
	// It is signed too, but is not a binding: it only groups a client's keys.
	ClientIDHeader = "X-Chancery-Client-Id"
)

// The request a proof signs: STS GetCallerIdentity, as the AWS SDKs send it.
const (
	GetCallerIdentityBody = "Action=GetCallerIdentity&Version=2011-06-15"
	stsContentType        = "application/x-www-form-urlencoded; charset=utf-8"
	stsGlobalEndpoint     = "https://sts.amazonaws.com"
	stsGlobalRegion       = "us-east-1"
)

// AWSProver makes proofs with AWS credentials: a SigV4-signed STS GetCallerIdentity
// request that carries the tenant and server headers among its signed headers.
type AWSProver struct {
	// Credentials are the workload's own; any awscreds provider will do. They are
	// retrieved at every Proof, so wrap a provider that fetches in an awscreds.Cache.
	Credentials sigv4.CredentialsProvider
	// OrgID is the tenant to ask a key for (sent as X-Ddog-Org-Id).
	OrgID string
	// ServerID names the broker the proof is for (sent as X-Chancery-Server-Id); the
	// broker refuses proofs naming another server.
	ServerID string
	// Region selects the regional endpoint https://sts.REGION.amazonaws.com and the
	// signing region. Empty means the global endpoint, signed for us-east-1.
	Region string
	// Endpoint overrides the STS URL (a VPC endpoint, or moto in tests). It is signed
	// for Region, or us-east-1 when Region is empty.
	Endpoint string
	// ClientID names this client instance (sent as X-Chancery-Client-Id, signed); a
	// Chancery broker then rotates out this client's previous key, and only its, when
	// it issues a new one. Set it to something stable for the life of the process
	// (NewClientID makes one). Empty: no header, and the broker groups keys by the STS
	// session instead.
	ClientID string
	// Signer defaults to a zero sigv4.Signer.
	Signer *sigv4.Signer
}

// NewClientID returns a random client id for AWSProver.ClientID.
func NewClientID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Proof signs a GetCallerIdentity request with the current credentials.
func (a *AWSProver) Proof(ctx context.Context) (Proof, error) {
	if err := a.Validate(); err != nil {
		return Proof{}, err
	}
	endpoint, region, err := a.endpoint()
	if err != nil {
		return Proof{}, err
	}
	creds, err := a.Credentials.Retrieve(ctx)
	if err != nil {
		return Proof{}, fmt.Errorf("delegatedauth: retrieve AWS credentials: %w", err)
	}
	if !creds.HasKeys() {
		return Proof{}, fmt.Errorf("delegatedauth: AWS credentials from %q have no access key pair", creds.Source)
	}
	if err := ctx.Err(); err != nil {
		return Proof{}, err
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(GetCallerIdentityBody))
	if err != nil {
		return Proof{}, fmt.Errorf("delegatedauth: build STS request for %s: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", stsContentType)
	req.Header.Set(OrgIDHeader, a.OrgID)
	req.Header.Set(ServerIDHeader, a.ServerID)
	if a.ClientID != "" {
		req.Header.Set(ClientIDHeader, a.ClientID)
	}
	signer := a.Signer
	if signer == nil {
		signer = new(sigv4.Signer)
	}
	if err := signer.Sign(req, creds, sigv4.Params{Service: "sts", Region: region}); err != nil {
		return Proof{}, fmt.Errorf("delegatedauth: sign STS request for %s: %w", endpoint, err)
	}

	h := req.Header.Clone()
	h.Set("Host", req.Host)
	if req.Host == "" {
		h.Set("Host", req.URL.Host)
	}
	return Proof{Method: http.MethodPost, URL: endpoint, Header: h, Body: []byte(GetCallerIdentityBody)}, nil
}

// Validate checks the prover's settings without doing any I/O, so that a
// misconfiguration is found at start rather than at the first refresh.
func (a *AWSProver) Validate() error {
	if err := checkHeaderValue("org id", a.OrgID); err != nil {
		return err
	}
	if err := checkHeaderValue("server id", a.ServerID); err != nil {
		return err
	}
	if a.ClientID != "" {
		if err := checkHeaderValue("client id", a.ClientID); err != nil {
			return err
		}
	}
	if _, _, err := a.endpoint(); err != nil {
		return err
	}
	if a.Credentials == nil {
		return errors.New("delegatedauth: AWS prover has no credentials provider")
	}
	return nil
}

// endpoint returns the STS URL and signing region.
func (a *AWSProver) endpoint() (endpoint, region string, err error) {
	if a.Region != "" && !isRegion(a.Region) {
		return "", "", fmt.Errorf("delegatedauth: region %q is not an AWS region name", a.Region)
	}
	region = a.Region
	if region == "" {
		region = stsGlobalRegion
	}
	switch {
	case a.Endpoint != "":
		u, err := url.Parse(a.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return "", "", fmt.Errorf("delegatedauth: STS endpoint %q is not an http(s) URL without query", a.Endpoint)
		}
		return a.Endpoint, region, nil
	case a.Region != "":
		return "https://sts." + a.Region + ".amazonaws.com", region, nil
	default:
		return stsGlobalEndpoint, region, nil
	}
}

// isRegion accepts region-shaped names ("us-east-1", "cn-north-1", "us-gov-west-1"),
// which keeps a region from smuggling a host or path into the endpoint.
func isRegion(s string) bool {
	if len(s) > 32 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func checkHeaderValue(what, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("delegatedauth: %s is empty", what)
	}
	if len(v) > 256 || strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("delegatedauth: %s %q is not a valid header value", what, shorten(v, 64))
	}
	return nil
}
