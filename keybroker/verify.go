package keybroker

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/chancery/chancery/delegatedauth"
)

// Header names a proof must sign.
const (
	OrgIDHeader    = "X-Ddog-Org-Id"        // the tenant the caller asks a key for
	ServerIDHeader = "X-Chancery-Server-Id" // the broker the proof is meant for
	ClientIDHeader = "X-Chancery-Client-Id" // optional: the client instance, for rotation
)

// isGetCallerIdentity reports whether a proof's form body is exactly
// Action=GetCallerIdentity&Version=2011-06-15 (in any order), with nothing else.
func isGetCallerIdentity(body []byte) bool {
	params, err := url.ParseQuery(string(body))
	return err == nil && len(params) == 2 &&
		slices.Equal(params["Action"], []string{"GetCallerIdentity"}) &&
		slices.Equal(params["Version"], []string{"2011-06-15"})
}

// A refusal is why a proof was not accepted. Its message is safe to return to the
// caller; Status is the HTTP status to answer with and Outcome the metric label.
type refusal struct {
	Status  int
	Outcome string
	Msg     string
	cause   error // for the log only
}

func (r *refusal) Error() string { return r.Msg }
func (r *refusal) Unwrap() error { return r.cause }

func refuse(status int, outcome, format string, args ...any) *refusal {
	return &refusal{Status: status, Outcome: outcome, Msg: fmt.Sprintf(format, args...)}
}

// Identity is who signed a verified proof.
type Identity struct {
	ARN     string // normalised (an assumed role as its role)
	RawARN  string // as STS returned it
	Account string
	UserID  string
	OrgID   string // the tenant the proof asked for
}

// sigV4Auth is a parsed SigV4 Authorization header.
type sigV4Auth struct {
	AccessKeyID   string
	Date          string // YYYYMMDD from the credential scope
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
// SignedHeaders=a;b, Signature=hex".
func parseAuthorization(h string) (sigV4Auth, error) {
	var a sigV4Auth
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return a, errors.New("authorization is not AWS4-HMAC-SHA256")
	}
	var haveCred, haveSigned, haveSig bool
	for _, field := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok {
			return a, fmt.Errorf("authorization field %q has no '='", truncate(field, 40))
		}
		// A repeated field would let the replay key (our parse) and what STS checks
		// (its parse) disagree.
		if k == "Credential" && haveCred || k == "SignedHeaders" && haveSigned || k == "Signature" && haveSig {
			return a, fmt.Errorf("authorization repeats %s", k)
		}
		switch k {
		case "Credential":
			parts := strings.Split(v, "/")
			if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" {
				return a, errors.New("authorization credential scope is not KEY/DATE/REGION/SERVICE/aws4_request")
			}
			a.AccessKeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]
			haveCred = true
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
			haveSigned = true
		case "Signature":
			if len(v) != 64 || strings.Trim(v, "0123456789abcdef") != "" {
				return a, errors.New("authorization signature is not 64 hex digits")
			}
			a.Signature = v
			haveSig = true
		default:
			return a, fmt.Errorf("authorization has unknown field %q", truncate(k, 40))
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return a, errors.New("authorization lacks Credential, SignedHeaders or Signature")
	}
	return a, nil
}

// isHopByHop reports whether a header belongs to one connection or a proxy and so must
// not be forwarded to STS (RFC 9110 section 7.6.1).
func isHopByHop(name string) bool {
	switch strings.ToLower(name) {
	case "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
		"te", "trailer", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// checkedProof is a proof whose form has been verified and that may be sent to STS.
type checkedProof struct {
	endpoint  string // the allow-listed endpoint, from our configuration, not the proof
	proof     delegatedauth.Proof
	auth      sigV4Auth
	orgID     string
	clientID  string // optional, signed: groups a client's keys for rotation
	signedAt  time.Time
	signature string
}

// check verifies everything about a proof that can be verified without STS.
func (b *Broker) check(encoded string, now time.Time) (*checkedProof, error) {
	p, err := delegatedauth.ParseProof(encoded)
	if err != nil {
		return nil, &refusal{Status: http.StatusBadRequest, Outcome: "malformed", Msg: err.Error(), cause: err}
	}
	if p.Method != http.MethodPost {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof method %q is not POST", truncate(p.Method, 20))
	}
	endpoint, err := normalizeEndpoint(p.URL)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof URL is not an STS endpoint")
	}
	if !b.allowed[endpoint] {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof URL is not an allowed STS endpoint")
	}
	if !isGetCallerIdentity(p.Body) {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof body is not exactly Action=GetCallerIdentity&Version=2011-06-15")
	}

	authz := p.Header.Values("Authorization")
	if len(authz) != 1 {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof must carry exactly one Authorization header")
	}
	auth, err := parseAuthorization(authz[0])
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof %v", err)
	}
	if auth.Service != "sts" {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof is signed for service %q, not sts", truncate(auth.Service, 20))
	}
	for _, h := range auth.SignedHeaders {
		if isHopByHop(h) {
			return nil, refuse(http.StatusUnauthorized, "rejected", "proof signs the %s header, which cannot be forwarded", truncate(h, 40))
		}
	}
	for _, h := range []string{"host", "x-amz-date", strings.ToLower(OrgIDHeader), strings.ToLower(ServerIDHeader)} {
		if !slices.Contains(auth.SignedHeaders, h) {
			return nil, refuse(http.StatusUnauthorized, "rejected", "proof does not sign the %s header", h)
		}
	}
	host := p.Header.Get("Host")
	if host == "" || "https://"+strings.ToLower(host) != endpoint && "http://"+strings.ToLower(host) != endpoint {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof Host header does not match its URL")
	}
	orgIDs, serverIDs := p.Header.Values(OrgIDHeader), p.Header.Values(ServerIDHeader)
	if len(orgIDs) != 1 || orgIDs[0] == "" {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof must carry one non-empty %s header", strings.ToLower(OrgIDHeader))
	}
	if len(serverIDs) != 1 || serverIDs[0] != b.cfg.ServerID {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof is for another server (%s does not name this one)", strings.ToLower(ServerIDHeader))
	}
	var clientID string
	if ids := p.Header.Values(ClientIDHeader); len(ids) > 0 {
		if len(ids) != 1 || ids[0] == "" || len(ids[0]) > 128 || !slices.Contains(auth.SignedHeaders, strings.ToLower(ClientIDHeader)) {
			return nil, refuse(http.StatusUnauthorized, "rejected", "proof %s header must be one signed value of at most 128 bytes", strings.ToLower(ClientIDHeader))
		}
		clientID = ids[0]
	}
	signedAt, err := time.Parse("20060102T150405Z", p.Header.Get("X-Amz-Date"))
	if err != nil || signedAt.Format("20060102") != auth.Date {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof X-Amz-Date is missing, malformed or not the credential scope's date")
	}
	if d := now.Sub(signedAt); d > b.cfg.MaxClockSkew || d < -b.cfg.MaxClockSkew {
		return nil, refuse(http.StatusUnauthorized, "rejected", "proof was signed at %s, outside ±%s of the server's clock",
			signedAt.Format(time.RFC3339), b.cfg.MaxClockSkew)
	}
	return &checkedProof{endpoint: endpoint, proof: p, auth: auth, orgID: orgIDs[0], clientID: clientID, signedAt: signedAt, signature: auth.Signature}, nil
}

// callSTS sends the checked proof to its allow-listed endpoint and returns the caller.
func (b *Broker) callSTS(ctx context.Context, cp *checkedProof) (Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.STSTimeout)
	defer cancel()
	// The URL is our own configured endpoint string: nothing in the proof can steer
	// where this request goes.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cp.endpoint+"/", bytes.NewReader(cp.proof.Body))
	if err != nil {
		return Identity{}, err
	}
	req.Host = cp.proof.Header.Get("Host")
	for _, name := range cp.auth.SignedHeaders {
		key := http.CanonicalHeaderKey(name)
		if key == "Host" || key == "Content-Length" {
			continue // set by net/http from req.Host and the body
		}
		req.Header[key] = cp.proof.Header.Values(key)
	}
	// Besides the signed headers, STS needs the signature, the session token and the
	// body's type; nothing else from the proof is forwarded.
	for _, key := range []string{"Authorization", "X-Amz-Security-Token", "Content-Type"} {
		if v := cp.proof.Header.Values(key); len(v) > 0 {
			req.Header[key] = v
		}
	}

	start := time.Now()
	resp, err := b.sts.Do(req)
	b.metrics.stsLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		return Identity{}, &refusal{Status: http.StatusBadGateway, Outcome: "sts_error", Msg: "STS could not be reached", cause: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Identity{}, &refusal{Status: http.StatusBadGateway, Outcome: "sts_error", Msg: "STS reply could not be read", cause: err}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code    string `xml:"Error>Code"`
			Message string `xml:"Error>Message"`
		}
		_ = xml.Unmarshal(body, &e)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return Identity{}, &refusal{Status: http.StatusBadGateway, Outcome: "sts_error",
				Msg: "STS is unavailable", cause: fmt.Errorf("STS answered %s %s", resp.Status, e.Code)}
		}
		code := e.Code
		if code == "" {
			code = resp.Status
		}
		return Identity{}, &refusal{Status: http.StatusUnauthorized, Outcome: "rejected",
			Msg: "STS rejected the proof: " + truncate(code, 60), cause: fmt.Errorf("STS %s: %s", resp.Status, truncate(e.Message, 200))}
	}
	var out struct {
		Arn     string `xml:"GetCallerIdentityResult>Arn"`
		UserID  string `xml:"GetCallerIdentityResult>UserId"`
		Account string `xml:"GetCallerIdentityResult>Account"`
	}
	if err := xml.Unmarshal(body, &out); err != nil || out.Arn == "" {
		return Identity{}, &refusal{Status: http.StatusBadGateway, Outcome: "sts_error",
			Msg: "STS reply has no caller ARN", cause: err}
	}
	return Identity{ARN: NormalizeARN(out.Arn), RawARN: out.Arn, Account: out.Account, UserID: out.UserID, OrgID: cp.orgID}, nil
}
