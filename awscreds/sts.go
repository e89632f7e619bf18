package awscreds

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chancery/chancery/sigv4"
)

const (
	stsAPIVersion      = "2011-06-15"
	stsGlobalEndpoint  = "https://sts.amazonaws.com"
	stsGlobalRegion    = "us-east-1"
	maxSTSResponseSize = 1 << 20
	defaultSTSTimeout  = 10 * time.Second
	stsMaxAttempts     = 3
)

// STSClient is a small client for the three AWS STS actions credential providers need:
// GetCallerIdentity, AssumeRole and AssumeRoleWithWebIdentity. It speaks the Query
// protocol, signs with sigv4, bounds every response to 1 MiB, retries throttling and
// server errors with capped, jittered backoff, and re-signs once with the server's
// clock when a signature is refused as expired (clock skew).
//
// The zero value uses the global endpoint. Copy a client to change its fields; a client
// in use must not be modified.
type STSClient struct {
	// Region selects the regional endpoint sts.REGION.amazonaws.com and the signing
	// region. Empty means the global endpoint (signed for us-east-1).
	Region string
	// Endpoint overrides the URL ("http://127.0.0.1:5000" for moto). When empty,
	// $AWS_ENDPOINT_URL_STS, then $AWS_ENDPOINT_URL, are used if set.
	Endpoint string
	// GlobalEndpoint forces sts.amazonaws.com even when Region is set; it is also
	// selected by AWS_STS_REGIONAL_ENDPOINTS=legacy.
	GlobalEndpoint bool
	// HTTPClient sends the requests; nil means http.DefaultClient. Redirects are not
	// followed whatever its CheckRedirect says: a request carries a signature or a
	// web identity token, meant for STS alone.
	HTTPClient *http.Client
	// Timeout bounds each attempt; zero means 10s.
	Timeout time.Duration
	// Signer signs the requests; nil means a zero sigv4.Signer per request. Share one
	// to keep its derived-key cache and clock-skew correction across calls.
	Signer *sigv4.Signer
}

func (c *STSClient) clone() STSClient { return *c }

// CallerIdentity is the result of GetCallerIdentity.
type CallerIdentity struct {
	Account   string
	ARN       string
	UserID    string
	RequestID string
}

// AssumeRoleInput are the parameters of AssumeRole.
type AssumeRoleInput struct {
	RoleARN         string
	RoleSessionName string
	ExternalID      string
	// Duration is rounded down to whole seconds; zero leaves STS's default (1h).
	Duration time.Duration
	// Policy is an optional inline session policy (JSON).
	Policy string
}

// AssumeRoleWithWebIdentityInput are the parameters of AssumeRoleWithWebIdentity.
type AssumeRoleWithWebIdentityInput struct {
	RoleARN          string
	RoleSessionName  string
	WebIdentityToken string
	Duration         time.Duration
	Policy           string
}

// String describes the input without the token.
func (in AssumeRoleWithWebIdentityInput) String() string {
	return fmt.Sprintf("AssumeRoleWithWebIdentityInput{RoleARN: %s, RoleSessionName: %s, WebIdentityToken: [redacted], Duration: %v}", in.RoleARN, in.RoleSessionName, in.Duration)
}

// GoString keeps %#v from printing the token.
func (in AssumeRoleWithWebIdentityInput) GoString() string { return in.String() }

// LogValue logs the input without the token.
func (in AssumeRoleWithWebIdentityInput) LogValue() slog.Value {
	return slog.GroupValue(slog.String("role_arn", in.RoleARN), slog.String("role_session_name", in.RoleSessionName))
}

// AssumeRoleOutput is the result of AssumeRole and AssumeRoleWithWebIdentity.
type AssumeRoleOutput struct {
	Credentials    Credentials
	AssumedRoleARN string
	AssumedRoleID  string
	RequestID      string
}

// GetCallerIdentity returns who creds belong to.
func (c *STSClient) GetCallerIdentity(ctx context.Context, creds Credentials) (CallerIdentity, error) {
	var resp struct {
		Result struct {
			Account string
			Arn     string
			UserId  string
		} `xml:"GetCallerIdentityResult"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}
	form := url.Values{"Action": {"GetCallerIdentity"}}
	err := c.call(ctx, func(ctx context.Context, signer *sigv4.Signer) (*http.Request, error) {
		return c.newRequest(ctx, form, &creds, signer)
	}, "GetCallerIdentity", &resp)
	if err != nil {
		return CallerIdentity{}, err
	}
	return CallerIdentity{Account: resp.Result.Account, ARN: resp.Result.Arn, UserID: resp.Result.UserId, RequestID: resp.RequestID}, nil
}

// NewGetCallerIdentityRequest builds a GetCallerIdentity request signed with creds
// and does not send it. It is the proof of identity a broker can forward to STS on
// the caller's behalf (delegated authentication); its body can be read again through
// GetBody.
func (c *STSClient) NewGetCallerIdentityRequest(ctx context.Context, creds Credentials) (*http.Request, error) {
	return c.newRequest(ctx, url.Values{"Action": {"GetCallerIdentity"}}, &creds, c.signer())
}

// AssumeRole exchanges creds for the credentials of a role.
func (c *STSClient) AssumeRole(ctx context.Context, creds Credentials, in AssumeRoleInput) (AssumeRoleOutput, error) {
	if in.RoleARN == "" || in.RoleSessionName == "" {
		return AssumeRoleOutput{}, errors.New("sts AssumeRole: RoleARN and RoleSessionName are required")
	}
	form := url.Values{"Action": {"AssumeRole"}, "RoleArn": {in.RoleARN}, "RoleSessionName": {in.RoleSessionName}}
	setOptional(form, "ExternalId", in.ExternalID)
	setOptional(form, "Policy", in.Policy)
	setDuration(form, in.Duration)
	var resp assumeRoleResponse
	err := c.call(ctx, func(ctx context.Context, signer *sigv4.Signer) (*http.Request, error) {
		return c.newRequest(ctx, form, &creds, signer)
	}, "AssumeRole "+in.RoleARN, &resp)
	if err != nil {
		return AssumeRoleOutput{}, err
	}
	return resp.output(SourceAssumeRole, "AssumeRole")
}

// AssumeRoleWithWebIdentity exchanges an OIDC token for the credentials of a role.
// The request is not signed: the token is the proof.
func (c *STSClient) AssumeRoleWithWebIdentity(ctx context.Context, in AssumeRoleWithWebIdentityInput) (AssumeRoleOutput, error) {
	if in.RoleARN == "" || in.RoleSessionName == "" || in.WebIdentityToken == "" {
		return AssumeRoleOutput{}, errors.New("sts AssumeRoleWithWebIdentity: RoleARN, RoleSessionName and WebIdentityToken are required")
	}
	form := url.Values{
		"Action":           {"AssumeRoleWithWebIdentity"},
		"RoleArn":          {in.RoleARN},
		"RoleSessionName":  {in.RoleSessionName},
		"WebIdentityToken": {in.WebIdentityToken},
	}
	setOptional(form, "Policy", in.Policy)
	setDuration(form, in.Duration)
	var resp assumeRoleResponse
	err := c.call(ctx, func(ctx context.Context, _ *sigv4.Signer) (*http.Request, error) {
		return c.newRequest(ctx, form, nil, nil)
	}, "AssumeRoleWithWebIdentity "+in.RoleARN, &resp)
	if err != nil {
		return AssumeRoleOutput{}, err
	}
	return resp.output(SourceWebIdentity, "AssumeRoleWithWebIdentity")
}

// assumeRoleResponse decodes both AssumeRoleResponse and
// AssumeRoleWithWebIdentityResponse: the results have the same shape under different
// element names, and whichever is present is used.
type assumeRoleResponse struct {
	AssumeRole  *assumeRoleResult `xml:"AssumeRoleResult"`
	WebIdentity *assumeRoleResult `xml:"AssumeRoleWithWebIdentityResult"`
	RequestID   string            `xml:"ResponseMetadata>RequestId"`
}

type assumeRoleResult struct {
	Credentials struct {
		AccessKeyId     string
		SecretAccessKey string
		SessionToken    string
		Expiration      string
	}
	AssumedRoleUser struct {
		Arn           string
		AssumedRoleId string
	}
}

func (r *assumeRoleResponse) output(source, action string) (AssumeRoleOutput, error) {
	res := cmp.Or(r.AssumeRole, r.WebIdentity)
	if res == nil || res.Credentials.AccessKeyId == "" || res.Credentials.SecretAccessKey == "" {
		return AssumeRoleOutput{}, fmt.Errorf("sts %s: response has no credentials (request id %s)", action, r.RequestID)
	}
	exp, err := time.Parse(time.RFC3339, res.Credentials.Expiration)
	if err != nil {
		return AssumeRoleOutput{}, fmt.Errorf("sts %s: response Expiration is not RFC 3339 (request id %s)", action, r.RequestID)
	}
	return AssumeRoleOutput{
		Credentials: Credentials{
			AccessKeyID:     res.Credentials.AccessKeyId,
			SecretAccessKey: res.Credentials.SecretAccessKey,
			SessionToken:    res.Credentials.SessionToken,
			Source:          source,
			CanExpire:       true,
			Expires:         exp,
		},
		AssumedRoleARN: res.AssumedRoleUser.Arn,
		AssumedRoleID:  res.AssumedRoleUser.AssumedRoleId,
		RequestID:      r.RequestID,
	}, nil
}

func setOptional(form url.Values, key, value string) {
	if value != "" {
		form.Set(key, value)
	}
}

func setDuration(form url.Values, d time.Duration) {
	if d > 0 {
		form.Set("DurationSeconds", strconv.Itoa(int(d/time.Second)))
	}
}

// endpoint returns the URL to send to and the region to sign for.
func (c *STSClient) endpoint() (string, string, error) {
	signingRegion := cmp.Or(c.Region, stsGlobalRegion)
	if e := cmp.Or(c.Endpoint, os.Getenv("AWS_ENDPOINT_URL_STS"), os.Getenv("AWS_ENDPOINT_URL")); e != "" {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", "", fmt.Errorf("sts endpoint %q is not an http(s) URL", e)
		}
		return strings.TrimRight(e, "/") + "/", signingRegion, nil
	}
	if c.Region == "" || c.GlobalEndpoint || os.Getenv("AWS_STS_REGIONAL_ENDPOINTS") == "legacy" {
		return stsGlobalEndpoint + "/", stsGlobalRegion, nil
	}
	if !validRegion(c.Region) {
		return "", "", fmt.Errorf("sts region %q is not a valid region name", c.Region)
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(c.Region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return "https://sts." + c.Region + "." + domain + "/", c.Region, nil
}

// signer returns the configured Signer or a new one.
func (c *STSClient) signer() *sigv4.Signer {
	if c.Signer != nil {
		return c.Signer
	}
	return &sigv4.Signer{}
}

// newRequest builds a Query-protocol POST; it is signed by signer when creds is not
// nil.
func (c *STSClient) newRequest(ctx context.Context, form url.Values, creds *Credentials, signer *sigv4.Signer) (*http.Request, error) {
	endpoint, region, err := c.endpoint()
	if err != nil {
		return nil, err
	}
	form.Set("Version", stsAPIVersion)
	body := []byte(form.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("sts %s: building request: %w", form.Get("Action"), err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Accept", "text/xml")
	if creds == nil {
		return req, nil
	}
	if !creds.HasKeys() {
		return nil, fmt.Errorf("sts %s: no credentials to sign with", form.Get("Action"))
	}
	sum := sha256.Sum256(body)
	if err := signer.Sign(req, *creds, sigv4.Params{Service: "sts", Region: region, PayloadHash: hex.EncodeToString(sum[:])}); err != nil {
		return nil, fmt.Errorf("sts %s: signing request: %w", form.Get("Action"), err)
	}
	return req, nil
}

// call sends the request build makes, retrying throttling, server errors, transport
// errors and a signature refused for clock skew (re-signed with the server's clock),
// and decodes a 200 response into out.
func (c *STSClient) call(ctx context.Context, build func(context.Context, *sigv4.Signer) (*http.Request, error), what string, out any) error {
	// One signer for all attempts, so a skew learnt from a refusal is used by the retry.
	signer := c.signer()
	hc := withoutRedirects(cmp.Or(c.HTTPClient, http.DefaultClient))
	timeout := cmp.Or(c.Timeout, defaultSTSTimeout)
	bo := backoff{base: 100 * time.Millisecond, max: 2 * time.Second}
	var lastErr error
	for attempt := range stsMaxAttempts {
		if attempt > 0 {
			if err := sleep(ctx, bo.delay(attempt-1)); err != nil {
				return fmt.Errorf("sts %s: %w (last error: %w)", what, err, lastErr)
			}
		}
		retry, err := c.attempt(ctx, hc, timeout, signer, build, out)
		if err == nil {
			return nil
		}
		lastErr = fmt.Errorf("sts %s: %w", what, err)
		if !retry || ctx.Err() != nil {
			return lastErr
		}
	}
	return lastErr
}

func (c *STSClient) attempt(ctx context.Context, hc *http.Client, timeout time.Duration, signer *sigv4.Signer, build func(context.Context, *sigv4.Signer) (*http.Request, error), out any) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := build(ctx, signer)
	if err != nil {
		return false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSTSResponseSize+1))
	if err != nil {
		return true, fmt.Errorf("reading response: %w", err)
	}
	if len(body) > maxSTSResponseSize {
		return false, fmt.Errorf("response larger than %d bytes", maxSTSResponseSize)
	}
	if resp.StatusCode != http.StatusOK {
		apiErr := parseSTSError(resp.StatusCode, resp.Header.Get("X-Amzn-Requestid"), body)
		if skew, ok := sigv4.ClockSkew(resp, body, time.Now()); ok && req.Header.Get("Authorization") != "" {
			signer.SetClockSkew(skew)
			return true, apiErr
		}
		return apiErr.retryable(), apiErr
	}
	return false, decodeSTSResponse(body, out)
}

// withoutRedirects returns a copy of hc that hands a redirect back as the response,
// which then fails as an unexpected status. Following one would re-send the request
// body (with a web identity token in it) to wherever the Location header says.
func withoutRedirects(hc *http.Client) *http.Client {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// decodeSTSResponse decodes a 200 response body (untrusted) into out.
func decodeSTSResponse(body []byte, out any) error {
	if err := xml.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding response: %w", xmlSyntaxOnly(err))
	}
	return nil
}

// validRegion reports whether r looks like a region name ("eu-west-1"), so that it
// can go into a host name.
func validRegion(r string) bool {
	if r == "" || r[0] == '-' || r[len(r)-1] == '-' || strings.Contains(r, "--") {
		return false
	}
	for _, ch := range r {
		if (ch < 'a' || ch > 'z') && (ch < '0' || ch > '9') && ch != '-' {
			return false
		}
	}
	return true
}
