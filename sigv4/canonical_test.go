package sigv4

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// These pin the canonicalisation rules, including where we deliberately differ from
// aws-sdk-go-v2 (the differential tests stay clear of those inputs).

func TestCanonicalURI(t *testing.T) {
	tests := []struct {
		wire              string
		escape, normalize bool
		want              string
	}{
		{"/", true, true, "/"},
		{"/a/./b/../c", true, true, "/a/c"}, // the SDK never normalises
		{"/a/./b/../c", true, false, "/a/./b/../c"},
		{"//a//b//", true, true, "/a/b/"},
		{"/a/b/..", true, true, "/a/"},
		{"/..", true, true, "/"},
		{"/a%20b", true, true, "/a%2520b"}, // escaped twice outside S3
		{"/a%20b", false, false, "/a%20b"}, // S3: as sent
		{"/a+b!$", true, true, "/a%2Bb%21%24"},
		{"/%E1%88%B4", true, true, "/%25E1%2588%25B4"},
	}
	for _, tt := range tests {
		if got := string(appendCanonicalURI(nil, tt.wire, tt.escape, tt.normalize)); got != tt.want {
			t.Errorf("canonical URI of %q (escape %v, normalize %v) = %q, want %q", tt.wire, tt.escape, tt.normalize, got, tt.want)
		}
	}
}

func TestCanonicalQueryRules(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", ""},
		{"b=2&a=1", "a=1&b=2"},
		{"a=2&a=1&a=10", "a=1&a=10&a=2"},
		{"a", "a="},
		{"a&&b=", "a=&b="},
		{"k=a+b%20c", "k=a%20b%20c"},
		{"k=%7e%2d", "k=~-"},
		{"%3A=1&0=2", "%3A=1&0=2"}, // sorted by encoded bytes: '%' before '0'
		// url.ParseQuery (and so the SDK) drops these pairs; we keep them, escaped.
		{"a;b=c", "a%3Bb=c"},
		{"k=100%", "k=100%25"},
		{"k=%zz", "k=%25zz"},
	}
	for _, tt := range tests {
		if got := canonicalQuery(tt.raw); got != tt.want {
			t.Errorf("canonical query of %q = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestCanonicalHeaderValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  a   b  ", "a b"},
		{"a\tb", "a\tb"},                // tabs are kept, as the SDK does
		{"v1\n  v2\r\n v3", "v1 v2 v3"}, // obsolete line folding becomes one space
		{"", ""},
	}
	for _, tt := range tests {
		if got := string(appendHeaderValue(nil, tt.in)); got != tt.want {
			t.Errorf("header value %q -> %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalHost(t *testing.T) {
	tests := []struct{ url, host, want string }{
		{"https://s3.amazonaws.com:443/", "", "s3.amazonaws.com"},
		{"http://s3.amazonaws.com:80/", "", "s3.amazonaws.com"},
		{"http://s3.amazonaws.com:443/", "", "s3.amazonaws.com:443"},
		{"https://127.0.0.1:9000/", "", "127.0.0.1:9000"},
		{"https://[::1]:443/", "", "[::1]"},
		{"https://[::1]/", "", "[::1]"},
		{"https://a.example/", "b.example:443", "b.example"},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.url)
		if got := canonicalHost(&http.Request{URL: u, Host: tt.host}); got != tt.want {
			t.Errorf("canonicalHost(%s, Host %q) = %q, want %q", tt.url, tt.host, got, tt.want)
		}
	}
}

func TestStrictPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/b/key", "/b/key"},
		{"/b/a+b=c!", "/b/a%2Bb%3Dc%21"},
		{"/b/%41%2f", "/b/A%2F"}, // an escaped unreserved byte is decoded; %2F stays
		{"/b/100%", "/b/100%25"},
	}
	for _, tt := range tests {
		if got := strictPath(tt.in); got != tt.want {
			t.Errorf("strictPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestSignFoldsCaseDuplicateHeaders: names that differ only in case are one header, and
// signing does not depend on map order.
func TestSignFoldsCaseDuplicateHeaders(t *testing.T) {
	var first string
	for i := 0; i < 20; i++ {
		var cr string
		s := &Signer{}
		s.debug = func(c, _ string) { cr = c }
		req, _ := http.NewRequest(http.MethodGet, "https://example.amazonaws.com/", nil)
		req.Header["X-Custom"] = []string{"1"}
		req.Header["x-custom"] = []string{"2"}
		if err := s.Sign(req, testCreds, Params{Service: "svc", Region: "us-east-1", Time: testParams().Time}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = cr
			if want := "x-custom:1,2\n"; !strings.Contains(cr, want) {
				t.Fatalf("canonical request lacks %q:\n%s", want, cr)
			}
		} else if cr != first {
			t.Fatalf("canonical request depends on map order:\n%s\n%s", first, cr)
		}
	}
}
