package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Payload hash values with a meaning of their own, for Params.PayloadHash or a
// caller-set X-Amz-Content-Sha256 header.
const (
	// UnsignedPayload leaves the body out of the signature. Services that allow it (S3)
	// then accept a body that is streamed without being read twice; TLS still protects it.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	// StreamingPayload signs the body chunk by chunk (aws-chunked encoding, S3 only); see
	// Signer.SignStreaming.
	StreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	// EmptyPayloadHash is the hex SHA-256 of an empty body.
	EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

const (
	algorithm = "AWS4-HMAC-SHA256"

	headerAuthorization = "Authorization"
	headerDate          = "X-Amz-Date"
	headerSecurityToken = "X-Amz-Security-Token"
	headerContentSHA256 = "X-Amz-Content-Sha256"

	amzDateLen = len("20060102T150405Z")

	// MaxPresignExpires is the longest lifetime SigV4 allows a presigned URL.
	MaxPresignExpires = 7 * 24 * time.Hour
)

// Signer signs HTTP requests with AWS Signature Version 4, in the Authorization header
// (Sign) or in the query string (Presign).
//
// The zero value follows the rules of most AWS services. Set DisableURIPathEscaping for
// S3. A Signer is safe for concurrent use once configured and must not be copied after
// first use: it caches derived signing keys and holds the clock skew it has been told.
type Signer struct {
	// DisableURIPathEscaping selects the S3 rules: the path is signed exactly as sent,
	// neither normalised nor escaped a second time. S3 expects it sent with every byte
	// but the unreserved ones percent-encoded, which net/http does not do for '+', '='
	// and a few others; Transport rewrites the path so.
	DisableURIPathEscaping bool

	// DisablePathNormalization keeps ".", ".." and empty path segments in the canonical
	// URI. aws-sdk-go-v2 never normalises; most services expect normalised paths.
	DisablePathNormalization bool

	// ContentSHA256Header sets X-Amz-Content-Sha256 to the payload hash and signs it in
	// header mode. S3 requires it; other services accept it.
	ContentSHA256Header bool

	// SessionTokenAfterSigning adds the session token to the request after signing,
	// outside the signature, as a few services (IoT) require.
	SessionTokenAfterSigning bool

	// SpoolThreshold is how much of a body that cannot be re-read is held in memory
	// while it is hashed; the rest goes to a temporary file in SpoolDir. Zero means
	// DefaultSpoolThreshold.
	SpoolThreshold int64
	// SpoolDir is where bodies past SpoolThreshold are spooled; "" means os.TempDir.
	SpoolDir string

	// Now returns the current time; nil means time.Now. The clock skew is added to it.
	Now func() time.Time

	skew atomic.Int64 // time.Duration to add to Now

	keys keyCache

	// debug, when set (by tests), sees the canonical request and string to sign.
	debug func(canonicalRequest, stringToSign string)
}

// Params are the per-request inputs of a signature.
type Params struct {
	// Service and Region form the credential scope, e.g. "s3" and "eu-west-1".
	Service, Region string

	// PayloadHash is the hex SHA-256 of the body, UnsignedPayload or StreamingPayload.
	// Empty means: a non-empty X-Amz-Content-Sha256 header on the request if there is
	// one, else the signer hashes the body (see Sign).
	PayloadHash string

	// Time is the signing time; zero means the signer's clock plus its clock skew.
	Time time.Time

	// Expires is how long a presigned URL stays valid (X-Amz-Expires); Presign only.
	Expires time.Duration
}

// SetClockSkew sets how far the signer's clock is behind AWS's (negative: ahead).
// Signatures carry Now()+skew. A caller learns it from a RequestTimeTooSkewed reply, see
// ClockSkew.
func (s *Signer) SetClockSkew(d time.Duration) { s.skew.Store(int64(d)) }

// ClockSkewOffset returns the offset set with SetClockSkew.
func (s *Signer) ClockSkewOffset() time.Duration { return time.Duration(s.skew.Load()) }

func (s *Signer) signingTime(p Params) time.Time {
	if !p.Time.IsZero() {
		return p.Time.UTC()
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return now().Add(time.Duration(s.skew.Load())).UTC()
}

// buffers are the scratch space of one signature, pooled so that signing allocates
// only the header values it sets.
type buffers struct {
	canon   []byte
	signed  []byte
	scratch []byte
	hmac    []byte
	params  []queryParam
	names   []string
}

var bufPool = sync.Pool{New: func() any {
	return &buffers{
		canon:   make([]byte, 0, 1024),
		signed:  make([]byte, 0, 128),
		scratch: make([]byte, 0, 256),
		hmac:    make([]byte, 0, 512),
		params:  make([]queryParam, 0, 16),
		names:   make([]string, 0, 16),
	}
}}

// maxPooledBuffer keeps an occasional huge request from pinning memory in the pool.
const maxPooledBuffer = 64 << 10

func putBuffers(b *buffers) {
	if cap(b.canon) > maxPooledBuffer || cap(b.scratch) > maxPooledBuffer || cap(b.hmac) > maxPooledBuffer {
		return
	}
	clear(b.names[:cap(b.names)]) // drop references to header keys
	bufPool.Put(b)
}

// errNoCredentials is returned when the credentials lack a key pair.
var errNoCredentials = errors.New("sigv4: credentials have no access key pair")

func validate(creds Credentials, p Params) error {
	if !creds.HasKeys() {
		return errNoCredentials
	}
	if p.Service == "" || p.Region == "" {
		return fmt.Errorf("sigv4: service %q and region %q must both be set", p.Service, p.Region)
	}
	if strings.ContainsAny(p.Service, "/\n") || strings.ContainsAny(p.Region, "/\n") {
		return fmt.Errorf("sigv4: service %q or region %q contains '/' or a newline", p.Service, p.Region)
	}
	return nil
}

// Sign signs req in place for header mode: it sets X-Amz-Date, X-Amz-Security-Token
// (with a session token), X-Amz-Content-Sha256 (with ContentSHA256Header) and
// Authorization, and rewrites the query string to its canonical form, which the server
// reads the same way.
//
// The payload hash is p.PayloadHash, else a caller-set X-Amz-Content-Sha256 header, else
// the SHA-256 of the body, streamed: through GetBody when the body can be re-read (the
// body itself is left unread), otherwise by reading it once into memory up to
// SpoolThreshold and a temporary file past it, and replacing req.Body (and GetBody) with
// the spooled copy. A body is never signed as empty.
func (s *Signer) Sign(req *http.Request, creds Credentials, p Params) error {
	_, err := s.signHeader(req, creds, p)
	return err
}

// signHeader is Sign, returning the payload hash it signed.
func (s *Signer) signHeader(req *http.Request, creds Credentials, p Params) (string, error) {
	if err := validate(creds, p); err != nil {
		return "", err
	}
	hash, err := s.payloadHash(req, p, false)
	if err != nil {
		return "", err
	}
	_, err = s.sign(req, creds, p, hash, s.signingTime(p), false, s.ContentSHA256Header)
	return hash, err
}

// Presign returns a presigned URL for req: the signature goes in the query string with
// X-Amz-Expires set to p.Expires (at most MaxPresignExpires). req is not modified. Every
// header left on req is signed and must be sent with the URL; a plain GET signs only
// the host.
//
// S3 presigned URLs sign no body: pass UnsignedPayload as p.PayloadHash.
func (s *Signer) Presign(req *http.Request, creds Credentials, p Params) (*url.URL, error) {
	if err := validate(creds, p); err != nil {
		return nil, err
	}
	if p.Expires < time.Second || p.Expires > MaxPresignExpires {
		return nil, fmt.Errorf("sigv4: presign expiry %v is outside 1s..%v", p.Expires, MaxPresignExpires)
	}
	r := *req // the URL is rebuilt below; Body may be spooled on this copy only
	u := *req.URL
	r.URL = &u
	hash, err := s.payloadHash(&r, p, true)
	if err != nil {
		return nil, err
	}
	return s.sign(&r, creds, p, hash, s.signingTime(p), true, false)
}

// presignParams are the query parameters Presign owns; any already on the URL are
// replaced.
var presignParams = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature"}

func (s *Signer) sign(req *http.Request, creds Credentials, p Params, payloadHash string, t time.Time, presign, contentHeader bool) (*url.URL, error) {
	if req.URL == nil {
		return nil, errors.New("sigv4: request has no URL")
	}
	b := bufPool.Get().(*buffers)
	defer putBuffers(b)

	var amzDate [amzDateLen]byte
	appendAmzDate(amzDate[:0], t)

	h := req.Header
	if h == nil {
		h = make(http.Header)
		req.Header = h
	}
	token := creds.SessionToken
	if !presign {
		setHeader(h, headerDate, string(amzDate[:]))
		delete(h, headerAuthorization)
		if token != "" && !s.SessionTokenAfterSigning {
			setHeader(h, headerSecurityToken, token)
		} else {
			delete(h, headerSecurityToken)
		}
		if contentHeader {
			setHeader(h, headerContentSHA256, payloadHash)
		}
	}
	host := canonicalHost(req)
	if host != req.Host && (req.Host != "" || host != req.URL.Host) {
		req.Host = host // send exactly the host that is signed
	}

	// Signed headers: "host", "content-length" when a length is sent, and every header
	// on the request but the few a hop may rewrite.
	names := append(signedHeaderNames(h, b.names), "host")
	if req.ContentLength > 0 {
		names = append(names, "content-length")
	}
	sortNames(names)
	b.names = names
	signed := b.signed[:0]
	for i, k := range names {
		if i > 0 && compareFold(k, names[i-1]) == 0 {
			continue
		}
		if len(signed) > 0 {
			signed = append(signed, ';')
		}
		signed = appendLower(signed, k)
	}
	b.signed = signed

	credScope := b.hmac[:0] // borrowed until the HMAC below
	credScope = appendScope(credScope, amzDate[:8], p.Region, p.Service)
	scopeLen := len(credScope)

	// Canonical request.
	c := b.canon[:0]
	c = append(c, req.Method...)
	if req.Method == "" {
		c = append(c, http.MethodGet...)
	}
	c = append(c, '\n')
	c = appendCanonicalURI(c, wirePath(req.URL), !s.DisableURIPathEscaping, !s.DisablePathNormalization)
	c = append(c, '\n')
	qStart := len(c)
	rawQuery := req.URL.RawQuery
	var extra []string
	if presign {
		rawQuery = withoutParams(rawQuery, presignParams)
		credential := creds.AccessKeyID + "/" + string(credScope)
		extra = []string{
			"X-Amz-Algorithm", algorithm,
			"X-Amz-Credential", credential,
			"X-Amz-Date", string(amzDate[:]),
			"X-Amz-Expires", strconv.FormatInt(int64(p.Expires/time.Second), 10),
			"X-Amz-SignedHeaders", string(signed),
		}
		if token != "" && !s.SessionTokenAfterSigning {
			extra = append(extra, "X-Amz-Security-Token", token)
		}
	}
	c, b.scratch, b.params = appendCanonicalQuery(c, rawQuery, extra, b.scratch, b.params)
	canonicalQuery := c[qStart:]
	if !presign && string(canonicalQuery) != req.URL.RawQuery {
		req.URL.RawQuery = string(canonicalQuery)
	}
	var queryCopy string
	if presign {
		queryCopy = string(canonicalQuery)
	}
	c = append(c, '\n')
	c = appendCanonicalHeaders(c, req, h, names, host)
	c = append(c, '\n')
	c = append(c, signed...)
	c = append(c, '\n')
	c = append(c, payloadHash...)
	b.canon = c
	crHash := sha256.Sum256(c)

	// String to sign, after the scope in the same buffer so one HMAC input is contiguous.
	sts := append(credScope, algorithm+"\n"...)
	sts = append(sts, amzDate[:]...)
	sts = append(sts, '\n')
	sts = append(sts, credScope[:scopeLen]...)
	sts = append(sts, '\n')
	sts = hex.AppendEncode(sts, crHash[:])
	stringToSign := sts[scopeLen:]
	b.hmac = sts

	key := s.keys.get(creds.SecretAccessKey, amzDate[:8], p.Region, p.Service)
	sig, hb := key.mac(stringToSign, b.scratch)
	b.scratch = hb
	var sigHex [2 * sha256.Size]byte
	hex.Encode(sigHex[:], sig[:])

	if s.debug != nil {
		s.debug(string(c), string(stringToSign))
	}

	if presign {
		var q strings.Builder
		q.Grow(len(queryCopy) + len("&X-Amz-Security-Token=") + 3*len(token) + len("&X-Amz-Signature=") + len(sigHex))
		q.WriteString(queryCopy)
		if token != "" && s.SessionTokenAfterSigning {
			q.WriteString("&X-Amz-Security-Token=")
			q.Write(appendEscaped(nil, token, false))
		}
		q.WriteString("&X-Amz-Signature=")
		q.Write(sigHex[:])
		u := *req.URL
		u.RawQuery = q.String()
		u.Opaque = req.URL.Opaque
		return &u, nil
	}

	var a strings.Builder
	a.Grow(len(algorithm) + len(" Credential=") + len(creds.AccessKeyID) + 1 + scopeLen +
		len(", SignedHeaders=") + len(signed) + len(", Signature=") + len(sigHex))
	a.WriteString(algorithm + " Credential=")
	a.WriteString(creds.AccessKeyID)
	a.WriteByte('/')
	a.Write(sts[:scopeLen])
	a.WriteString(", SignedHeaders=")
	a.Write(signed)
	a.WriteString(", Signature=")
	a.Write(sigHex[:])
	setHeader(h, headerAuthorization, a.String())
	if token != "" && s.SessionTokenAfterSigning {
		setHeader(h, headerSecurityToken, token)
	}
	return nil, nil
}

// sortNames sorts header names by their lower-case form, ties by the exact name, so
// names differing only in case are adjacent and in a stable order.
func sortNames(names []string) {
	// Insertion sort: a request has a handful of headers, and sort.Slice would allocate.
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && lessName(names[j], names[j-1]); j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
}

func lessName(a, b string) bool {
	if c := compareFold(a, b); c != 0 {
		return c < 0
	}
	return a < b
}

// appendCanonicalHeaders appends "name:value\n" for each signed header; values of names
// equal but for case are joined with commas, in the order they appear on the request.
func appendCanonicalHeaders(c []byte, req *http.Request, h http.Header, names []string, host string) []byte {
	for i, k := range names {
		same := i > 0 && compareFold(k, names[i-1]) == 0
		if !same {
			if i > 0 {
				c = append(c, '\n')
			}
			c = appendLower(c, k)
			c = append(c, ':')
		}
		switch k {
		case "host":
			c = appendHeaderValue(c, host)
			continue
		case "content-length":
			c = strconv.AppendInt(c, req.ContentLength, 10)
			continue
		}
		for j, v := range h[k] {
			if same || j > 0 {
				c = append(c, ',')
			}
			c = appendHeaderValue(c, v)
		}
	}
	return append(c, '\n')
}

// appendScope appends "date/region/service/aws4_request".
func appendScope(b []byte, date []byte, region, service string) []byte {
	b = append(b, date...)
	b = append(b, '/')
	b = append(b, region...)
	b = append(b, '/')
	b = append(b, service...)
	return append(b, "/aws4_request"...)
}

// appendAmzDate appends t (UTC) as 20060102T150405Z without going through time.Format.
func appendAmzDate(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	hh, mm, ss := t.Clock()
	b = append(b, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	b = append(b, byte('0'+int(mo)/10), byte('0'+int(mo)%10), byte('0'+d/10), byte('0'+d%10), 'T')
	b = append(b, byte('0'+hh/10), byte('0'+hh%10), byte('0'+mm/10), byte('0'+mm%10), byte('0'+ss/10), byte('0'+ss%10), 'Z')
	return b
}

// setHeader sets a single value, reusing the existing slice when there is one.
func setHeader(h http.Header, k, v string) {
	if old := h[k]; cap(old) > 0 {
		h[k] = append(old[:0], v)
		return
	}
	h[k] = []string{v}
}

// withoutParams drops from rawQuery every pair whose decoded key is one of names.
func withoutParams(rawQuery string, names []string) string {
	if !strings.Contains(rawQuery, "X-Amz-") && !strings.Contains(rawQuery, "%") {
		return rawQuery
	}
	var out strings.Builder
	for q := rawQuery; q != ""; {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		k, _, _ := strings.Cut(pair, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		drop := false
		for _, n := range names {
			if k == n {
				drop = true
				break
			}
		}
		if drop {
			continue
		}
		if out.Len() > 0 {
			out.WriteByte('&')
		}
		out.WriteString(pair)
	}
	return out.String()
}
