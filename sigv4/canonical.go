package sigv4

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// This file builds the parts of the canonical request. Every function appends to a
// caller-owned buffer instead of returning strings: signing a typical request then costs a
// handful of allocations (the header values it sets), not one per header and parameter.

const upperhex = "0123456789ABCDEF"

// unreserved reports the bytes AWS leaves unescaped: RFC 3986 unreserved characters.
var unreserved = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~'
	}
	return t
}()

// appendEscaped appends s with every byte but the unreserved ones (and '/' when keepSlash)
// percent-encoded in upper case, as SigV4 requires.
func appendEscaped(b []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved[c] || (keepSlash && c == '/') {
			b = append(b, c)
			continue
		}
		b = append(b, '%', upperhex[c>>4], upperhex[c&15])
	}
	return b
}

// wirePath is the path as it goes on the wire: URL.Opaque when the caller set the
// request-target verbatim, else the escaped path. It never returns "".
func wirePath(u *url.URL) string {
	var p string
	if u.Opaque != "" {
		// Opaque is "//host/path" or "/path" (see url.URL); a query is never part of it.
		o := u.Opaque
		if i := strings.IndexByte(o, '?'); i >= 0 {
			o = o[:i]
		}
		o = strings.TrimPrefix(o, "//")
		if i := strings.IndexByte(o, '/'); i >= 0 {
			p = o[i:]
		}
	} else {
		p = u.EscapedPath()
	}
	if p == "" {
		return "/"
	}
	return p
}

// appendCanonicalURI appends the canonical URI of the wire path p. Most services want
// the path normalised (RFC 3986 dot segments removed, empty segments dropped) and
// escaped once more; S3 (escapePath false) wants it exactly as sent.
func appendCanonicalURI(b []byte, p string, escapePath, normalize bool) []byte {
	if !escapePath {
		return append(b, p...)
	}
	if !normalize || !needsNormalizing(p) {
		return appendEscaped(b, p, true)
	}
	return appendEscaped(b, normalizePath(p), true)
}

// needsNormalizing reports whether p has an empty, "." or ".." segment, so the common
// case costs no allocation.
func needsNormalizing(p string) bool {
	if p == "" || p[0] != '/' {
		return true
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		// p[start:i] is a segment ending at a slash or at the end.
		seg := p[start:i]
		if seg == "." || seg == ".." || (seg == "" && i < len(p)) {
			return true
		}
		start = i + 1
	}
	return false
}

// normalizePath removes dot segments (RFC 3986 section 5.2.4) and empty segments; a
// trailing slash, or a trailing dot segment, keeps the result ending in "/".
func normalizePath(p string) string {
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for _, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	last := segs[len(segs)-1]
	trailing := last == "" || last == "." || last == ".."
	if len(out) == 0 {
		return "/"
	}
	n := "/" + strings.Join(out, "/")
	if trailing {
		n += "/"
	}
	return n
}

// queryParam locates one encoded parameter in a scratch buffer; offsets, not strings,
// so that collecting parameters does not allocate.
type queryParam struct{ ks, ke, vs, ve int }

// appendCanonicalQuery appends the canonical query string of rawQuery (plus extra, which
// presigning adds) to dst. scratch and params are reusable buffers; both are returned.
//
// Parameters are decoded the way url.ParseQuery does ("+" is a space, an empty pair is
// skipped), encoded the SigV4 way and sorted by encoded key, then value. Unlike
// ParseQuery, a pair with a bad escape or a ";" is kept, escaped literally: a signer must
// not silently drop what will still be sent.
func appendCanonicalQuery(dst []byte, rawQuery string, extra []string, scratch []byte, params []queryParam) ([]byte, []byte, []queryParam) {
	scratch = scratch[:0]
	params = params[:0]
	for q := rawQuery; q != ""; {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		var p queryParam
		p.ks = len(scratch)
		scratch = appendUnescapedEscaped(scratch, k)
		p.ke = len(scratch)
		p.vs = len(scratch)
		scratch = appendUnescapedEscaped(scratch, v)
		p.ve = len(scratch)
		params = append(params, p)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		var p queryParam
		p.ks = len(scratch)
		scratch = appendEscaped(scratch, extra[i], false)
		p.ke = len(scratch)
		p.vs = len(scratch)
		scratch = appendEscaped(scratch, extra[i+1], false)
		p.ve = len(scratch)
		params = append(params, p)
	}
	slices.SortFunc(params, func(a, b queryParam) int {
		if c := bytes.Compare(scratch[a.ks:a.ke], scratch[b.ks:b.ke]); c != 0 {
			return c
		}
		return bytes.Compare(scratch[a.vs:a.ve], scratch[b.vs:b.ve])
	})
	for i, p := range params {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, scratch[p.ks:p.ke]...)
		dst = append(dst, '=')
		dst = append(dst, scratch[p.vs:p.ve]...)
	}
	return dst, scratch, params
}

// appendUnescapedEscaped decodes one query component (as url.QueryUnescape would, but
// keeping a malformed escape as literal bytes) and appends it SigV4-encoded.
func appendUnescapedEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		if unreserved[c] {
			b = append(b, c)
		} else {
			b = append(b, '%', upperhex[c>>4], upperhex[c&15])
		}
	}
	return b
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// ignoredHeader reports headers that are never signed because a proxy or the transport
// may legitimately change them: the same set aws-sdk-go-v2 leaves out.
func ignoredHeader(k string) bool {
	switch len(k) {
	case len("Expect"):
		return strings.EqualFold(k, "Expect")
	case len("User-Agent"):
		return strings.EqualFold(k, "User-Agent")
	case len("Authorization"):
		return strings.EqualFold(k, "Authorization")
	case len("X-Amzn-Trace-Id"):
		return strings.EqualFold(k, "X-Amzn-Trace-Id")
	case len("Transfer-Encoding"):
		return strings.EqualFold(k, "Transfer-Encoding")
	case len("Content-Length"):
		// Signed from Request.ContentLength instead, which is what is sent.
		return strings.EqualFold(k, "Content-Length")
	}
	return false
}

// compareFold compares a and b as if both were lower case, without allocating.
func compareFold(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := lower(a[i]), lower(b[i])
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

func appendLower(b []byte, s string) []byte {
	n := len(b)
	b = append(b, s...)
	for i := n; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return b
}

// signedHeaderNames collects the names of the headers to sign into names (reused),
// unsorted.
func signedHeaderNames(h http.Header, names []string) []string {
	names = names[:0]
	for k := range h {
		if ignoredHeader(k) || strings.EqualFold(k, "Host") {
			continue
		}
		names = append(names, k)
	}
	return names
}

// appendHeaderValue appends v trimmed, with each run of spaces (and obsolete line
// folding) collapsed to one space.
func appendHeaderValue(b []byte, v string) []byte {
	i, j := 0, len(v)
	for i < j && isTrimmed(v[i]) {
		i++
	}
	for j > i && isTrimmed(v[j-1]) {
		j--
	}
	v = v[i:j]
	// Most values need no folding: append them whole.
	clean := true
	for k := 0; k < len(v); k++ {
		if c := v[k]; c == '\r' || c == '\n' || (c == ' ' && k+1 < len(v) && v[k+1] == ' ') {
			clean = false
			break
		}
	}
	if clean {
		return append(b, v...)
	}
	space := false
	for k := 0; k < len(v); k++ {
		c := v[k]
		if c == ' ' || c == '\r' || c == '\n' {
			if !space {
				b = append(b, ' ')
				space = true
			}
			continue
		}
		space = false
		b = append(b, c)
	}
	return b
}

func isTrimmed(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// canonicalHost is the host the request will be sent with, without a default port: what
// net/http puts in the Host header once the port is implied.
func canonicalHost(req *http.Request) string {
	host := req.Host
	if host == "" && req.URL != nil {
		host = req.URL.Host
	}
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.IndexByte(host[i:], ']') >= 0 {
		return host
	}
	port := host[i+1:]
	scheme := ""
	if req.URL != nil {
		scheme = req.URL.Scheme
	}
	if port == "" || (port == "80" && strings.EqualFold(scheme, "http")) || (port == "443" && strings.EqualFold(scheme, "https")) {
		return host[:i]
	}
	return host
}

// strictPath re-encodes an escaped path the way S3 computes its canonical URI: every
// byte but the unreserved ones and '/' percent-encoded, an existing escape kept (in
// upper case) unless it encodes an unreserved byte. net/http leaves characters such as
// '+', '!' or '=' unescaped, which S3 would then sign differently from us.
func strictPath(p string) string {
	b := make([]byte, 0, len(p)+16)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			c = unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
		} else if c == '/' {
			b = append(b, c)
			continue
		}
		if unreserved[c] {
			b = append(b, c)
		} else {
			b = append(b, '%', upperhex[c>>4], upperhex[c&15])
		}
	}
	return string(b)
}

// setStrictPath makes u send (and so sign) the S3-strict form of its path.
func setStrictPath(u *url.URL) {
	if u.Opaque != "" {
		return // the caller chose the request-target verbatim
	}
	ep := u.EscapedPath()
	sp := strictPath(ep)
	if sp == ep {
		return
	}
	if dec, err := url.PathUnescape(sp); err == nil {
		u.Path, u.RawPath = dec, sp
	}
}
