package delegatedauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// IntakeKeyPath is where a broker (Chancery's keybroker or Datadog's intake) exchanges
// proofs for API keys.
const IntakeKeyPath = "/api/v2/intake-key"

// AuthScheme is the Authorization scheme that carries an encoded proof.
const AuthScheme = "Delegated"

// Exchange limits.
const (
	DefaultExchangeTimeout = 30 * time.Second
	MaxReplyLen            = 1 << 20
	maxAPIKeyLen           = 1 << 10
	maxTitleLen            = 200
)

// A Prover makes proofs of the caller's cloud identity. AWSProver is the one for AWS.
type Prover interface {
	Proof(ctx context.Context) (Proof, error)
}

// An Exchanger trades proofs for API keys at a broker. Its Key method makes a fresh
// proof and exchanges it at every call; wrap it in a Refresher to keep one key fresh.
//
// Redirects are not followed: the proof would travel with the request to wherever the
// redirect points.
type Exchanger struct {
	// Server is the broker's base URL, e.g. https://chancery.example.com.
	Server string
	// Prover makes the proof that Key exchanges.
	Prover Prover
	// HTTPClient defaults to http.DefaultClient. Its CheckRedirect is overridden.
	HTTPClient *http.Client
	// Timeout bounds one exchange (request and reply); zero means
	// DefaultExchangeTimeout.
	Timeout time.Duration
}

// Key makes a proof and exchanges it for a key.
func (e *Exchanger) Key(ctx context.Context) (Key, error) {
	if e.Prover == nil {
		return Key{}, errors.New("delegatedauth: exchanger has no prover")
	}
	p, err := e.Prover.Proof(ctx)
	if err != nil {
		return Key{}, err
	}
	return e.Exchange(ctx, p)
}

// Exchange sends the proof to the broker and returns the key it answers with. A reply
// other than 2xx is an *ExchangeError.
func (e *Exchanger) Exchange(ctx context.Context, p Proof) (Key, error) {
	endpoint, err := intakeKeyURL(e.Server)
	if err != nil {
		return Key{}, err
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultExchangeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, http.NoBody)
	if err != nil {
		return Key{}, fmt.Errorf("delegatedauth: build exchange request for %s: %w", endpoint, err)
	}
	req.Header.Set("Authorization", AuthScheme+" "+p.Encode())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")

	resp, err := e.client().Do(req)
	if err != nil {
		// *url.Error names the method and URL; it never holds request headers.
		return Key{}, fmt.Errorf("delegatedauth: exchange: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplyLen+1))
	if err != nil {
		return Key{}, fmt.Errorf("delegatedauth: exchange at %s: read reply: %w", endpoint, err)
	}
	if len(body) > MaxReplyLen {
		return Key{}, fmt.Errorf("delegatedauth: exchange at %s: reply larger than %d bytes", endpoint, MaxReplyLen)
	}
	k, err := ParseExchangeReply(resp.StatusCode, body)
	if err != nil {
		return Key{}, fmt.Errorf("delegatedauth: exchange at %s: %w", endpoint, err)
	}
	return k, nil
}

func (e *Exchanger) client() *http.Client {
	c := http.DefaultClient
	if e.HTTPClient != nil {
		c = e.HTTPClient
	}
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// intakeKeyURL joins the broker's base URL and the intake-key path.
func intakeKeyURL(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("delegatedauth: server %q is not an http(s) URL", server)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("delegatedauth: server URL %s://%s must not have user info, query or fragment", u.Scheme, u.Host)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + IntakeKeyPath
	u.RawPath = ""
	return u.String(), nil
}

// ExchangeError is a broker's refusal: a reply with a status other than 2xx. Title and
// Detail come from the first JSON:API error object when the reply has one; they are
// the broker's words, shortened and stripped of control characters.
type ExchangeError struct {
	StatusCode int
	Title      string
	Detail     string
}

func (e *ExchangeError) Error() string {
	s := "broker answered " + statusText(e.StatusCode)
	if e.Title != "" {
		s += ": " + e.Title
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Temporary reports whether trying again later may succeed: server errors, throttling
// and timeouts, as opposed to a refusal of the identity.
func (e *ExchangeError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusRequestTimeout
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprintf("%d", code)
}

// The reply shapes, Datadog's JSON:API documents.
type (
	keyReply struct {
		Data *struct {
			Attributes *struct {
				APIKey    *string `json:"api_key"`
				ExpiresAt *string `json:"expires_at"`
			} `json:"attributes"`
		} `json:"data"`
	}
	errorReply struct {
		Errors []struct {
			Status string `json:"status"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
)

// ParseExchangeReply interprets a broker's reply to an exchange: on a 2xx status the
// key document {"data":{"attributes":{"api_key":…,"expires_at":…}}}, where expires_at
// (RFC 3339) is optional; on any other status an *ExchangeError built from the JSON:API
// error document when there is one. Errors never contain the key.
func ParseExchangeReply(status int, body []byte) (Key, error) {
	if status < 200 || status > 299 {
		return Key{}, parseErrorReply(status, body)
	}
	var r keyReply
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&r); err != nil {
		return Key{}, fmt.Errorf("reply (%d) is not a JSON key document: %s", status, jsonErrorKind(err))
	}
	if dec.More() || dec.InputOffset() < int64(len(bytes.TrimRight(body, " \t\r\n"))) {
		return Key{}, fmt.Errorf("reply (%d) has data after the JSON document", status)
	}
	if r.Data == nil || r.Data.Attributes == nil || r.Data.Attributes.APIKey == nil {
		return Key{}, fmt.Errorf("reply (%d) has no data.attributes.api_key", status)
	}
	raw := *r.Data.Attributes.APIKey
	if err := checkAPIKey(raw); err != nil {
		return Key{}, fmt.Errorf("reply (%d): api_key %w", status, err)
	}
	k := Key{APIKey: NewAPIKey(raw), Managed: true}
	if exp := r.Data.Attributes.ExpiresAt; exp != nil && *exp != "" {
		t, err := time.Parse(time.RFC3339, *exp)
		if err != nil {
			return Key{}, fmt.Errorf("reply (%d): expires_at %q is not RFC 3339", status, shorten(clean(*exp), 40))
		}
		k.Expires = t
	}
	return k, nil
}

// jsonErrorKind describes a decoding error without quoting the input, which may be a
// key in a document of the wrong shape.
func jsonErrorKind(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Sprintf("%s has the wrong type (%s)", typeErr.Field, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("syntax error at offset %d", syntaxErr.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated"
	default:
		return "invalid JSON"
	}
}

// checkAPIKey refuses keys that cannot travel in an HTTP header as they are.
func checkAPIKey(k string) error {
	if k == "" {
		return errors.New("is empty")
	}
	if len(k) > maxAPIKeyLen {
		return fmt.Errorf("is longer than %d bytes", maxAPIKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("has a byte that is not printable ASCII at offset %d", i)
		}
	}
	return nil
}

func parseErrorReply(status int, body []byte) *ExchangeError {
	e := &ExchangeError{StatusCode: status}
	var r errorReply
	if json.Unmarshal(body, &r) == nil && len(r.Errors) > 0 {
		e.Title = shorten(clean(r.Errors[0].Title), maxTitleLen)
		e.Detail = shorten(clean(r.Errors[0].Detail), maxTitleLen)
	}
	return e
}

// clean drops control characters and invalid UTF-8, so a broker's words cannot forge
// log lines or terminal escapes.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\uFFFD' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

// shorten cuts s to at most n bytes at a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
