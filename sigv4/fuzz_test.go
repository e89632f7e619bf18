package sigv4

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// sdkCanonicalQuery is aws-sdk-go-v2's definition of the canonical query: url.ParseQuery,
// then every key and value QueryEscape'd with "+" as "%20", sorted by key then value.
func sdkCanonicalQuery(raw string) (string, bool) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", false
	}
	enc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	var pairs [][2]string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, [2]string{enc(k), enc(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i][0] != pairs[j][0] {
			return pairs[i][0] < pairs[j][0]
		}
		return pairs[i][1] < pairs[j][1]
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p[0] + "=" + p[1])
	}
	return b.String(), true
}

func canonicalQuery(raw string) string {
	out, _, _ := appendCanonicalQuery(nil, raw, nil, nil, nil)
	return string(out)
}

// FuzzCanonicalQuery: never panics, is idempotent (the canonical form is its own
// canonical form), and agrees with the SDK wherever url.ParseQuery accepts the input.
func FuzzCanonicalQuery(f *testing.F) {
	for _, s := range []string{"", "a=b", "b=2&a=1&a=0", "a", "=", "&&", "a=%zz", "k=v+w%20x", "%E1%88%B4=bar", "a;b=c", "x=%", "-._~=~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c := canonicalQuery(raw)
		if again := canonicalQuery(c); again != c {
			t.Fatalf("not idempotent: %q -> %q -> %q", raw, c, again)
		}
		if want, ok := sdkCanonicalQuery(raw); ok && want != c {
			t.Fatalf("query %q: ours %q, sdk %q", raw, c, want)
		}
	})
}

// FuzzCanonicalURI: never panics; normalising is idempotent and yields an absolute path
// with no dot or empty segment; without dot or empty segments normalising changes
// nothing.
func FuzzCanonicalURI(f *testing.F) {
	for _, s := range []string{"/", "//", "/./", "/a/../..", "/example space/", "/%2F", "a", "", "/ሴ", "/a//b/./c/../d/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n := normalizePath(p)
		if normalizePath(n) != n {
			t.Fatalf("normalizePath not idempotent: %q -> %q -> %q", p, n, normalizePath(n))
		}
		if !strings.HasPrefix(n, "/") || needsNormalizing(n) {
			t.Fatalf("normalizePath(%q) = %q still needs normalising", p, n)
		}
		if !needsNormalizing(p) && n != p {
			t.Fatalf("normalizePath changed a normal path %q to %q", p, n)
		}
		for _, esc := range []bool{true, false} {
			for _, norm := range []bool{true, false} {
				appendCanonicalURI(nil, p, esc, norm)
			}
		}
	})
}

// FuzzSign signs requests built from arbitrary input: it must never panic, and signing
// the same request twice must give the same Authorization.
func FuzzSign(f *testing.F) {
	f.Add("GET", "example.amazonaws.com", "/a b", "x=1&y", "My-Header", " v  w ", int64(0))
	f.Add("", "[::1]:443", "//", "%", "X-Amz-Date", "", int64(5))
	f.Fuzz(func(t *testing.T, method, host, path, query, hk, hv string, length int64) {
		s := &Signer{}
		mk := func() *http.Request {
			return &http.Request{
				Method:        method,
				URL:           &url.URL{Scheme: "https", Host: host, Path: path, RawQuery: query},
				Header:        http.Header{hk: {hv, hv}},
				ContentLength: length,
			}
		}
		creds := Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret", SessionToken: "tok"}
		p := Params{Service: "svc", Region: "us-east-1", Time: time.Unix(1440938160, 0), PayloadHash: UnsignedPayload, Expires: time.Hour}
		a, b := mk(), mk()
		errA, errB := s.Sign(a, creds, p), s.Sign(b, creds, p)
		if (errA == nil) != (errB == nil) || a.Header.Get("Authorization") != b.Header.Get("Authorization") {
			t.Fatalf("signing twice differs: %v %v", errA, errB)
		}
		if _, err := s.Presign(mk(), creds, p); err != nil && errA == nil {
			t.Fatalf("Presign failed where Sign did not: %v", err)
		}
	})
}
