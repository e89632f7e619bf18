package delegatedauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// A Proof is a signed, unsent STS GetCallerIdentity request. Whoever holds the AWS
// credentials can make one; a server that forwards it to STS learns who signed it, and
// nothing that lets it act as them: the signature covers only this one request.
type Proof struct {
	Method string
	URL    string      // the STS endpoint, e.g. https://sts.amazonaws.com
	Header http.Header // includes Host and the SigV4 Authorization
	Body   []byte
}

// Limits on an encoded proof and its parts. A real proof is about 2 KiB; the limits
// leave room for long session tokens while bounding what a server decodes.
const (
	MaxProofLen  = 32 << 10
	maxBodyLen   = 4 << 10
	maxURLLen    = 2 << 10
	maxHeaderLen = 24 << 10
)

// ErrMalformedProof is wrapped by every error ParseProof returns.
var ErrMalformedProof = errors.New("malformed delegated auth proof")

// Encode returns the proof in the wire format the Datadog agent uses, so that a Chancery
// broker and a Datadog intake accept the same proofs:
//
//	base64(body) "|" base64(JSON of the headers) "|" method "|" base64(url)
//
// The headers JSON maps each header name to its list of values; Host is included.
func (p Proof) Encode() string {
	headers, err := json.Marshal(map[string][]string(p.Header))
	if err != nil {
		// A map of string slices always marshals; keep the signature error-free.
		panic("delegatedauth: marshal proof headers: " + err.Error())
	}
	enc := base64.StdEncoding
	return enc.EncodeToString(p.Body) + "|" + enc.EncodeToString(headers) + "|" + p.Method + "|" + enc.EncodeToString([]byte(p.URL))
}

// ParseProof decodes an encoded proof. It checks only the form (sizes, base64, JSON,
// header names and values, an absolute URL); whether the proof is acceptable is the
// verifier's job. Header names are canonicalised; two spellings of one name are refused
// as ambiguous.
func ParseProof(s string) (Proof, error) {
	if len(s) > MaxProofLen {
		return Proof{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformedProof, len(s), MaxProofLen)
	}
	parts := strings.Split(s, "|")
	if len(parts) != 4 {
		return Proof{}, fmt.Errorf("%w: %d parts separated by '|', want 4", ErrMalformedProof, len(parts))
	}
	body, err := decodePart("body", parts[0], maxBodyLen)
	if err != nil {
		return Proof{}, err
	}
	rawHeaders, err := decodePart("headers", parts[1], maxHeaderLen)
	if err != nil {
		return Proof{}, err
	}
	rawURL, err := decodePart("url", parts[3], maxURLLen)
	if err != nil {
		return Proof{}, err
	}
	method := parts[2]
	if !isToken(method) {
		return Proof{}, fmt.Errorf("%w: method %q is not an HTTP method", ErrMalformedProof, method)
	}

	var fields map[string][]string
	if err := json.Unmarshal(rawHeaders, &fields); err != nil {
		return Proof{}, fmt.Errorf("%w: headers are not a JSON object of string lists: %v", ErrMalformedProof, err)
	}
	header := make(http.Header, len(fields))
	for name, values := range fields {
		if !isToken(name) {
			return Proof{}, fmt.Errorf("%w: header name %q is invalid", ErrMalformedProof, name)
		}
		key := http.CanonicalHeaderKey(name)
		if _, dup := header[key]; dup {
			return Proof{}, fmt.Errorf("%w: header %q appears under two spellings", ErrMalformedProof, key)
		}
		for _, v := range values {
			if !validHeaderValue(v) {
				return Proof{}, fmt.Errorf("%w: header %q has a control character in its value", ErrMalformedProof, key)
			}
		}
		header[key] = values
	}

	u, err := url.Parse(string(rawURL))
	if err != nil || !u.IsAbs() || u.Host == "" {
		return Proof{}, fmt.Errorf("%w: url %q is not an absolute URL", ErrMalformedProof, truncate(string(rawURL), 100))
	}
	return Proof{Method: method, URL: string(rawURL), Header: header, Body: body}, nil
}

func decodePart(name, part string, limit int) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(part)) > limit+2 {
		return nil, fmt.Errorf("%w: %s longer than %d bytes", ErrMalformedProof, name, limit)
	}
	b, err := base64.StdEncoding.DecodeString(part)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64: %v", ErrMalformedProof, name, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%w: %s longer than %d bytes", ErrMalformedProof, name, limit)
	}
	return b, nil
}

// validHeaderValue reports whether v has no control characters other than tab, as
// RFC 9110 field values require (so the value can be forwarded as is).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isToken reports whether s is a non-empty RFC 9110 token (header names and methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
