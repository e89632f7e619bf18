package sigv4

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// suiteDir returns the AWS SigV4 conformance suite directory from CHANCERY_SIGV4_SUITE,
// skipping the test when it is unset (failing under CHANCERY_TEST_REQUIRE=all).
func suiteDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CHANCERY_SIGV4_SUITE")
	if dir == "" {
		if os.Getenv("CHANCERY_TEST_REQUIRE") == "all" {
			t.Fatal("CHANCERY_SIGV4_SUITE is not set and CHANCERY_TEST_REQUIRE=all")
		}
		t.Skip("CHANCERY_SIGV4_SUITE is not set; point it at shared/testdata/sigv4-suite/v4 to run the AWS conformance suite")
	}
	return dir
}

type suiteContext struct {
	Credentials struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
		Token           string `json:"token"`
	} `json:"credentials"`
	ExpirationInSeconds int       `json:"expiration_in_seconds"`
	Normalize           bool      `json:"normalize"`
	Region              string    `json:"region"`
	Service             string    `json:"service"`
	SignBody            bool      `json:"sign_body"`
	Timestamp           time.Time `json:"timestamp"`
	OmitSessionToken    bool      `json:"omit_session_token"`
}

// parseSuiteRequest reads a request.txt. The request-target is taken verbatim, as the
// suite means it (it holds raw spaces and UTF-8), through URL.Opaque, which is how
// net/http sends a request-target verbatim; folded header
// lines keep their line breaks so that the signer's whitespace rules are exercised.
func parseSuiteRequest(t *testing.T, raw []byte) *http.Request {
	t.Helper()
	head, body, _ := bytes.Cut(raw, []byte("\n\n"))
	sc := bufio.NewScanner(bytes.NewReader(head))
	sc.Scan()
	line := sc.Text()
	sp1, sp2 := strings.IndexByte(line, ' '), strings.LastIndexByte(line, ' ')
	if sp1 < 0 || sp2 <= sp1 {
		t.Fatalf("bad request line %q", line)
	}
	method, target := line[:sp1], line[sp1+1:sp2]
	path, query, _ := strings.Cut(target, "?")
	req := &http.Request{
		Method: method,
		URL:    &url.URL{Scheme: "https", Opaque: path, RawQuery: query},
		Header: http.Header{},
	}
	var lastKey string
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			vs := req.Header[lastKey]
			vs[len(vs)-1] += "\n" + l
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("bad header line %q", l)
		}
		switch http.CanonicalHeaderKey(k) {
		case "Host":
			req.Host = v
			req.URL.Host = v
			// "//host/path" keeps a path that starts with "//" from reading as a host.
			req.URL.Opaque = "//" + v + path
		case "Content-Length":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = n
		default:
			lastKey = http.CanonicalHeaderKey(k)
			req.Header.Add(k, v)
		}
	}
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return req
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConformanceSuite runs every case of the AWS SigV4 test suite in header and query
// mode and compares the canonical request, the string to sign and the signature byte for
// byte.
func TestConformanceSuite(t *testing.T) {
	dir := suiteDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		caseDir := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(caseDir, "context.json")); err != nil {
			continue
		}
		ran++
		t.Run(e.Name(), func(t *testing.T) {
			var ctx suiteContext
			if err := json.Unmarshal([]byte(readFile(t, caseDir, "context.json")), &ctx); err != nil {
				t.Fatal(err)
			}
			creds := Credentials{
				AccessKeyID:     ctx.Credentials.AccessKeyID,
				SecretAccessKey: ctx.Credentials.SecretAccessKey,
				SessionToken:    ctx.Credentials.Token,
			}
			params := Params{
				Service: ctx.Service,
				Region:  ctx.Region,
				Time:    ctx.Timestamp,
				Expires: time.Duration(ctx.ExpirationInSeconds) * time.Second,
			}
			newSigner := func(gotCR, gotSTS *string) *Signer {
				s := &Signer{
					DisablePathNormalization: !ctx.Normalize,
					SessionTokenAfterSigning: ctx.OmitSessionToken,
				}
				s.debug = func(cr, sts string) { *gotCR, *gotSTS = cr, sts }
				return s
			}
			raw := []byte(readFile(t, caseDir, "request.txt"))

			t.Run("header", func(t *testing.T) {
				var cr, sts string
				s := newSigner(&cr, &sts)
				s.ContentSHA256Header = ctx.SignBody
				req := parseSuiteRequest(t, raw)
				if err := s.Sign(req, creds, params); err != nil {
					t.Fatal(err)
				}
				expectEqual(t, "canonical request", cr, readFile(t, caseDir, "header-canonical-request.txt"))
				expectEqual(t, "string to sign", sts, readFile(t, caseDir, "header-string-to-sign.txt"))
				wantSig := strings.TrimSpace(readFile(t, caseDir, "header-signature.txt"))
				auth := req.Header.Get("Authorization")
				if !strings.HasSuffix(auth, "Signature="+wantSig) {
					t.Errorf("Authorization = %q, want signature %s", auth, wantSig)
				}
				// The whole Authorization line of the signed request must match too.
				signedReq := readFile(t, caseDir, "header-signed-request.txt")
				if !strings.Contains(signedReq, "Authorization:"+auth+"\n") {
					t.Errorf("Authorization %q not in the expected signed request:\n%s", auth, signedReq)
				}
				if creds.SessionToken != "" && req.Header.Get("X-Amz-Security-Token") != creds.SessionToken {
					t.Errorf("X-Amz-Security-Token not set (omit_session_token=%v)", ctx.OmitSessionToken)
				}
			})

			t.Run("query", func(t *testing.T) {
				var cr, sts string
				s := newSigner(&cr, &sts)
				req := parseSuiteRequest(t, raw)
				before := req.URL.String()
				u, err := s.Presign(req, creds, params)
				if err != nil {
					t.Fatal(err)
				}
				if req.URL.String() != before {
					t.Errorf("Presign modified the request URL: %s", req.URL)
				}
				expectEqual(t, "canonical request", cr, readFile(t, caseDir, "query-canonical-request.txt"))
				expectEqual(t, "string to sign", sts, readFile(t, caseDir, "query-string-to-sign.txt"))
				q, err := url.ParseQuery(u.RawQuery)
				if err != nil {
					t.Fatal(err)
				}
				expectEqual(t, "signature", q.Get("X-Amz-Signature"), strings.TrimSpace(readFile(t, caseDir, "query-signature.txt")))
				if creds.SessionToken != "" && q.Get("X-Amz-Security-Token") != creds.SessionToken {
					t.Errorf("X-Amz-Security-Token missing from presigned URL %s", u)
				}
			})
		})
	}
	if ran != 38 {
		t.Errorf("ran %d suite cases, want 38", ran)
	}
}

func expectEqual(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}
