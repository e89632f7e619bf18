package sigv4_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chancery/chancery/sigv4"
)

// skewedServer refuses, the way S3 does, any request whose X-Amz-Date is more than 15
// minutes from its clock, which runs ahead of the test's by ahead. moto does not check
// request times, so this failure needs a stand-in.
func skewedServer(t *testing.T, ahead time.Duration, hits *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		serverNow := time.Now().Add(ahead).UTC()
		w.Header().Set("Date", serverNow.Format(http.TimeFormat))
		signed, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil || signed.Sub(serverNow).Abs() > 15*time.Minute {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>RequestTimeTooSkewed</Code>`+
				`<Message>The difference between the request time and the current time is too large.</Message>`+
				`<ServerTime>`+serverNow.Format(time.RFC3339)+`</ServerTime></Error>`)
			return
		}
		w.Write(body) // echo, to show the retried body arrived whole
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTransportClockSkewRetry(t *testing.T) {
	creds := sigv4.StaticCredentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}
	tests := []struct {
		name      string
		body      func() io.Reader
		mode      sigv4.PayloadMode
		wantCode  int
		wantHits  int32
		wantLearn bool
		ahead     time.Duration // zero means 45m: past S3's 15 minutes, within MaxClockSkew
	}{
		{"no body", func() io.Reader { return nil }, sigv4.PayloadSigned, 200, 2, true, 0},
		{"re-readable body", func() io.Reader { return strings.NewReader("payload") }, sigv4.PayloadSigned, 200, 2, true, 0},
		{"spooled body", func() io.Reader { return struct{ io.Reader }{strings.NewReader("payload")} }, sigv4.PayloadSigned, 200, 2, true, 0},
		// Unsigned and not re-readable: sent once, so the refusal reaches the caller.
		{"streamed body", func() io.Reader { return struct{ io.Reader }{strings.NewReader("payload")} }, sigv4.PayloadUnsigned, 403, 1, true, 0},
		// A skew past MaxClockSkew is not learned: the refusal reaches the caller.
		{"server clock 3h ahead", func() io.Reader { return strings.NewReader("payload") }, sigv4.PayloadSigned, 403, 1, false, 3 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			ahead := cmp.Or(tt.ahead, 45*time.Minute)
			srv := skewedServer(t, ahead, &hits)
			tr := &sigv4.Transport{Credentials: creds, Service: "s3", Region: "us-east-1", Payload: tt.mode}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+"/b/k", tt.body())
			before := req.Header.Clone()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || hits.Load() != tt.wantHits {
				t.Fatalf("status %d after %d requests, want %d after %d: %s", resp.StatusCode, hits.Load(), tt.wantCode, tt.wantHits, got)
			}
			if tt.wantCode == 200 && tt.body() != nil && string(got) != "payload" {
				t.Errorf("retried body arrived as %q", got)
			}
			if tt.wantCode == 403 && !bytes.Contains(got, []byte("RequestTimeTooSkewed")) {
				t.Errorf("refusal body not passed on whole: %s", got)
			}
			skew := tr.ClockSkewOffset()
			if tt.wantLearn && (skew < ahead-time.Minute || skew > ahead+time.Minute) {
				t.Errorf("learned skew %v, want about %v", skew, ahead)
			}
			if !tt.wantLearn {
				if skew != 0 {
					t.Errorf("learned skew %v past MaxClockSkew", skew)
				}
				return
			}
			if len(req.Header) != len(before) || req.Header.Get("Authorization") != "" {
				t.Errorf("caller's request headers modified: %v", req.Header)
			}
			// The next request goes through first time.
			hits.Store(0)
			resp, err = (&http.Client{Transport: tr}).Get(srv.URL + "/b/k")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || hits.Load() != 1 {
				t.Errorf("after learning the skew: status %d after %d requests", resp.StatusCode, hits.Load())
			}
		})
	}
}

func TestTransportErrors(t *testing.T) {
	creds := sigv4.StaticCredentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}
	failing := sigv4.CredentialsProviderFunc(func(context.Context) (sigv4.Credentials, error) {
		return sigv4.Credentials{}, errors.New("no role attached")
	})
	never := roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Error("a request that cannot be signed was sent")
		return nil, errors.New("unreachable")
	})
	tests := []struct {
		name string
		tr   *sigv4.Transport
		url  string
		want string
	}{
		{"no credentials", &sigv4.Transport{Base: never}, "https://sts.amazonaws.com/", "no Credentials"},
		{"provider fails", &sigv4.Transport{Base: never, Credentials: failing}, "https://sts.amazonaws.com/", "no role attached"},
		{"non-AWS host", &sigv4.Transport{Base: never, Credentials: creds}, "http://localhost:8080/", "configure them"},
		{"IP host", &sigv4.Transport{Base: never, Credentials: creds, Service: "s3"}, "http://10.0.0.1/", "configure them"},
		{"odd host", &sigv4.Transport{Base: never, Credentials: creds}, "http://us-east-1.amazonaws.com/", "no service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &closeTracker{Reader: strings.NewReader("x")}
			req, _ := http.NewRequest(http.MethodPost, tt.url, body)
			_, err := tt.tr.RoundTrip(req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("RoundTrip error %v, want %q", err, tt.want)
			}
			if !body.closed {
				t.Error("RoundTrip did not close the request body on error")
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestTransportInfersScope(t *testing.T) {
	var got string
	tr := &sigv4.Transport{
		Credentials: sigv4.StaticCredentials{AccessKeyID: "AKID", SecretAccessKey: "secret"},
		Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r.Header.Get("Authorization")
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
		}),
	}
	for host, scope := range map[string]string{
		"https://sqs.eu-west-1.amazonaws.com/":                 "/eu-west-1/sqs/aws4_request",
		"https://bucket.s3.dualstack.us-east-2.amazonaws.com/": "/us-east-2/s3/aws4_request",
		"https://aps-workspaces.us-west-2.amazonaws.com/":      "/us-west-2/aps/aws4_request",
	} {
		req, _ := http.NewRequest(http.MethodGet, host, nil)
		if _, err := tr.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, scope) {
			t.Errorf("%s signed with %q, want scope %s", host, got, scope)
		}
	}
}
