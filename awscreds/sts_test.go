package awscreds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chancery/chancery/sigv4"
)

func TestSTSEndpoint(t *testing.T) {
	tests := []struct {
		name       string
		client     STSClient
		env        map[string]string
		wantURL    string
		wantRegion string
		wantErr    bool
	}{
		{name: "no region: global", wantURL: "https://sts.amazonaws.com/", wantRegion: "us-east-1"},
		{name: "regional", client: STSClient{Region: "eu-west-1"}, wantURL: "https://sts.eu-west-1.amazonaws.com/", wantRegion: "eu-west-1"},
		{name: "china", client: STSClient{Region: "cn-north-1"}, wantURL: "https://sts.cn-north-1.amazonaws.com.cn/", wantRegion: "cn-north-1"},
		{name: "forced global", client: STSClient{Region: "eu-west-1", GlobalEndpoint: true}, wantURL: "https://sts.amazonaws.com/", wantRegion: "us-east-1"},
		{name: "legacy env", client: STSClient{Region: "eu-west-1"}, env: map[string]string{"AWS_STS_REGIONAL_ENDPOINTS": "legacy"}, wantURL: "https://sts.amazonaws.com/", wantRegion: "us-east-1"},
		{name: "override", client: STSClient{Region: "eu-west-1", Endpoint: "http://127.0.0.1:5000"}, wantURL: "http://127.0.0.1:5000/", wantRegion: "eu-west-1"},
		{name: "override without region", client: STSClient{Endpoint: "http://127.0.0.1:5000/"}, wantURL: "http://127.0.0.1:5000/", wantRegion: "us-east-1"},
		{name: "service env", client: STSClient{Region: "eu-west-1"}, env: map[string]string{"AWS_ENDPOINT_URL_STS": "http://localhost:1", "AWS_ENDPOINT_URL": "http://localhost:2"}, wantURL: "http://localhost:1/", wantRegion: "eu-west-1"},
		{name: "global env", env: map[string]string{"AWS_ENDPOINT_URL": "http://localhost:2"}, wantURL: "http://localhost:2/", wantRegion: "us-east-1"},
		{name: "field wins over env", client: STSClient{Endpoint: "http://a"}, env: map[string]string{"AWS_ENDPOINT_URL_STS": "http://b"}, wantURL: "http://a/", wantRegion: "us-east-1"},
		{name: "bad override", client: STSClient{Endpoint: "sts.local"}, wantErr: true},
		{name: "host injection in region", client: STSClient{Region: "evil.com/x"}, wantErr: true},
		{name: "upper-case region", client: STSClient{Region: "EU-WEST-1"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearAWSEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			u, region, err := tt.client.endpoint()
			if (err != nil) != tt.wantErr || u != tt.wantURL || region != tt.wantRegion {
				t.Errorf("endpoint() = %q, %q, %v; want %q, %q (error %v)", u, region, err, tt.wantURL, tt.wantRegion, tt.wantErr)
			}
		})
	}
}

// fakeSTS answers the Query API with canned bodies and records the forms it got.
type fakeSTS struct {
	mu      sync.Mutex
	forms   []url.Values
	auth    []string
	replies []stsReply // consumed in order; the last one repeats
}

type stsReply struct {
	status int
	body   string
}

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = r.ParseForm()
	f.forms = append(f.forms, r.PostForm)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	reply := f.replies[0]
	if len(f.replies) > 1 {
		f.replies = f.replies[1:]
	}
	w.Header().Set("X-Amzn-Requestid", "req-header-id")
	w.WriteHeader(reply.status)
	io.WriteString(w, reply.body)
}

func assumeRoleXML(action, session string, exp time.Time) string {
	return fmt.Sprintf(`<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult><Credentials><AccessKeyId>ASIAFAKE</AccessKeyId><SecretAccessKey>fake-sekrit</SecretAccessKey><SessionToken>fake-token</SessionToken><Expiration>%[3]s</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA:%[2]s</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/r/%[2]s</Arn></AssumedRoleUser></%[1]sResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></%[1]sResponse>`,
		action, session, exp.UTC().Format(time.RFC3339))
}

func TestSTSAssumeRoleRequest(t *testing.T) {
	clearAWSEnv(t)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	f := &fakeSTS{replies: []stsReply{{200, assumeRoleXML("AssumeRole", "s1", exp)}}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := &STSClient{Endpoint: srv.URL, Region: "eu-west-1"}
	out, err := c.AssumeRole(context.Background(), Credentials{AccessKeyID: "AKID", SecretAccessKey: "sk", SessionToken: "st"},
		AssumeRoleInput{RoleARN: "arn:aws:iam::123456789012:role/r", RoleSessionName: "s1", ExternalID: "ext", Duration: 900 * time.Second, Policy: `{"Version":"2012-10-17"}`})
	if err != nil {
		t.Fatal(err)
	}
	want := AssumeRoleOutput{
		Credentials:    Credentials{AccessKeyID: "ASIAFAKE", SecretAccessKey: "fake-sekrit", SessionToken: "fake-token", Source: SourceAssumeRole, CanExpire: true, Expires: exp},
		AssumedRoleARN: "arn:aws:sts::123456789012:assumed-role/r/s1", AssumedRoleID: "AROA:s1", RequestID: "req-1",
	}
	if out != want {
		t.Errorf("AssumeRole = %+v, want %+v", out, want)
	}
	form := f.forms[0]
	for k, v := range map[string]string{"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": "arn:aws:iam::123456789012:role/r", "RoleSessionName": "s1", "ExternalId": "ext", "DurationSeconds": "900", "Policy": `{"Version":"2012-10-17"}`} {
		if form.Get(k) != v {
			t.Errorf("form %s = %q, want %q", k, form.Get(k), v)
		}
	}
	if !strings.HasPrefix(f.auth[0], "AWS4-HMAC-SHA256 Credential=AKID/") || !strings.Contains(f.auth[0], "/eu-west-1/sts/aws4_request") {
		t.Errorf("Authorization = %q, want a sigv4 signature for eu-west-1/sts", f.auth[0])
	}
}

func TestSTSWebIdentityUnsignedAndTokenReread(t *testing.T) {
	clearAWSEnv(t)
	f := &fakeSTS{replies: []stsReply{{200, assumeRoleXML("AssumeRoleWithWebIdentity", "pod", time.Now().Add(time.Hour))}}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	w := &WebIdentity{STS: &STSClient{Endpoint: srv.URL}, RoleARN: "arn:aws:iam::123456789012:role/r", RoleSessionName: "pod", TokenFile: tokenFile}
	for _, tok := range []string{"token-one", "token-two-rotated"} {
		if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		creds := mustRetrieve(t, w)
		if creds.Source != SourceWebIdentity || creds.AccessKeyID != "ASIAFAKE" {
			t.Errorf("credentials = %v", creds)
		}
	}
	if got := f.forms[0].Get("WebIdentityToken") + "," + f.forms[1].Get("WebIdentityToken"); got != "token-one,token-two-rotated" {
		t.Errorf("tokens sent = %s, want the file's content at each call", got)
	}
	if f.auth[0] != "" {
		t.Errorf("AssumeRoleWithWebIdentity was signed: Authorization %q", f.auth[0])
	}
}

func TestSTSErrors(t *testing.T) {
	clearAWSEnv(t)
	const denied = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error><RequestId>req-body-id</RequestId></ErrorResponse>`
	const throttled = `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>`
	tests := []struct {
		name      string
		replies   []stsReply
		wantCalls int
		want      *APIError // nil: not an APIError
		wantErr   string
	}{
		{name: "denied not retried", replies: []stsReply{{403, denied}}, wantCalls: 1,
			want: &APIError{StatusCode: 403, Type: "Sender", Code: "AccessDenied", Message: "not allowed", RequestID: "req-header-id"}},
		{name: "throttling retried then ok", replies: []stsReply{{400, throttled}, {400, throttled}, {200, assumeRoleXML("AssumeRole", "s", time.Now().Add(time.Hour))}}, wantCalls: 3},
		{name: "server errors exhaust attempts", replies: []stsReply{{503, "<html>down</html>"}}, wantCalls: 3,
			want: &APIError{StatusCode: 503, Message: "response is not an AWS error document", RequestID: "req-header-id"}},
		{name: "truncated error", replies: []stsReply{{400, "<ErrorResponse><Error><Code>Acc"}}, wantCalls: 1,
			want: &APIError{StatusCode: 400, Message: "unparsable error response: XML syntax error on line 1", RequestID: "req-header-id"}},
		{name: "no credentials in 200", replies: []stsReply{{200, `<AssumeRoleResponse><AssumeRoleResult/></AssumeRoleResponse>`}}, wantCalls: 1, wantErr: "response has no credentials"},
		{name: "bad expiration", replies: []stsReply{{200, strings.Replace(assumeRoleXML("AssumeRole", "s", time.Now()), "Z</Expiration>", "fake-sekrit</Expiration>", 1)}}, wantCalls: 1, wantErr: "Expiration is not RFC 3339"},
		{name: "too large", replies: []stsReply{{200, strings.Repeat(" ", maxSTSResponseSize+1)}}, wantCalls: 1, wantErr: "larger than"},
		{name: "not xml", replies: []stsReply{{200, "fake-sekrit"}}, wantCalls: 1, wantErr: "decoding response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSTS{replies: tt.replies}
			srv := httptest.NewServer(f)
			defer srv.Close()
			c := &STSClient{Endpoint: srv.URL}
			_, err := c.AssumeRole(context.Background(), Credentials{AccessKeyID: "AKID", SecretAccessKey: "sk"}, AssumeRoleInput{RoleARN: "arn:aws:iam::1:role/r", RoleSessionName: "s"})
			if len(f.forms) != tt.wantCalls {
				t.Errorf("calls = %d, want %d", len(f.forms), tt.wantCalls)
			}
			if tt.want == nil && tt.wantErr == "" {
				if err != nil {
					t.Errorf("AssumeRole: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("AssumeRole succeeded, want error")
			}
			if strings.Contains(err.Error(), "fake-sekrit") {
				t.Errorf("error leaks the response's secret: %v", err)
			}
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if tt.want != nil {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || *apiErr != *tt.want {
					t.Errorf("error = %#v, want %#v", apiErr, tt.want)
				}
			}
		})
	}
}

func TestSTSInputValidation(t *testing.T) {
	c := &STSClient{Endpoint: "http://127.0.0.1:1"}
	ctx := context.Background()
	if _, err := c.AssumeRole(ctx, Credentials{AccessKeyID: "A", SecretAccessKey: "S"}, AssumeRoleInput{RoleARN: "arn"}); err == nil {
		t.Error("AssumeRole without session name succeeded")
	}
	if _, err := c.AssumeRoleWithWebIdentity(ctx, AssumeRoleWithWebIdentityInput{RoleARN: "arn", RoleSessionName: "s"}); err == nil {
		t.Error("AssumeRoleWithWebIdentity without token succeeded")
	}
	if _, err := c.GetCallerIdentity(ctx, Credentials{}); err == nil || !strings.Contains(err.Error(), "no credentials to sign with") {
		t.Errorf("GetCallerIdentity without credentials: %v", err)
	}
}

func TestSTSContextCancelStopsRetries(t *testing.T) {
	f := &fakeSTS{replies: []stsReply{{503, ""}}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&STSClient{Endpoint: srv.URL}).GetCallerIdentity(ctx, Credentials{AccessKeyID: "A", SecretAccessKey: "S"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("GetCallerIdentity with a cancelled context = %v, want context.Canceled", err)
	}
}

func FuzzParseSTSError(f *testing.F) {
	f.Add(403, []byte(`<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>m</Message></Error><RequestId>r</RequestId></ErrorResponse>`))
	f.Add(403, []byte(`<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>m</Message></Error></Errors></ErrorResponse>`))
	f.Add(500, []byte(`<html>`))
	f.Add(400, []byte(``))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := parseSTSError(status, "", body)
		if e == nil || e.StatusCode != status {
			t.Fatalf("parseSTSError = %#v", e)
		}
		if len(e.Code) > 128+3 || len(e.Message) > 1024+3 || len(e.RequestID) > 128+3 {
			t.Errorf("unbounded fields: %d %d %d", len(e.Code), len(e.Message), len(e.RequestID))
		}
		_ = e.Error()
	})
}

func FuzzSTSAssumeRoleResponse(f *testing.F) {
	f.Add([]byte(assumeRoleXML("AssumeRole", "s", time.Now())))
	f.Add([]byte(assumeRoleXML("AssumeRoleWithWebIdentity", "s", time.Now())))
	f.Add([]byte(`<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId></Credentials></AssumeRoleResult></AssumeRoleResponse>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		// Decode as call does, without the network.
		var resp assumeRoleResponse
		if err := decodeSTSResponse(body, &resp); err != nil {
			return
		}
		out, err := resp.output(SourceAssumeRole, "AssumeRole")
		if err != nil {
			return
		}
		if !out.Credentials.HasKeys() || !out.Credentials.CanExpire {
			t.Errorf("accepted response gave incomplete credentials %v", out.Credentials)
		}
	})
}

func TestWebIdentityInputRedacted(t *testing.T) {
	in := AssumeRoleWithWebIdentityInput{RoleARN: "arn", RoleSessionName: "s", WebIdentityToken: "eyJ-sekrit"}
	var b strings.Builder
	logger := slog.New(slog.NewTextHandler(&b, nil))
	logger.Info("x", "in", in)
	for _, s := range []string{fmt.Sprint(in), fmt.Sprintf("%+v", in), fmt.Sprintf("%#v", in), b.String()} {
		if strings.Contains(s, "sekrit") {
			t.Errorf("token leaked: %s", s)
		}
	}
}

func TestWebIdentityConfigErrors(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		w             WebIdentity
		wantErr       string
		notConfigured bool
	}{
		{name: "nothing set", wantErr: "AWS_WEB_IDENTITY_TOKEN_FILE not set", notConfigured: true},
		{name: "no token file", w: WebIdentity{RoleARN: "arn"}, wantErr: "has no token file"},
		{name: "no role", w: WebIdentity{TokenFile: tokenFile}, wantErr: "has no role ARN"},
		{name: "missing file", w: WebIdentity{RoleARN: "arn", TokenFile: tokenFile}, wantErr: "opening token file"},
		{name: "empty file", w: WebIdentity{RoleARN: "arn", TokenFile: empty}, wantErr: "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.w.Retrieve(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.Is(err, ErrNotConfigured) != tt.notConfigured {
				t.Errorf("Retrieve = %v, want error containing %q (not configured: %v)", err, tt.wantErr, tt.notConfigured)
			}
		})
	}
}

// TestSTSCorrectsClockSkew: a server whose clock is ahead refuses the first signature
// as expired; the client learns the skew from the reply and re-signs, unless the skew
// is past sigv4.MaxClockSkew, which is refused rather than learned.
func TestSTSCorrectsClockSkew(t *testing.T) {
	clearAWSEnv(t)
	for _, tt := range []struct {
		ahead    time.Duration
		requests int
		ok       bool
	}{
		{40 * time.Minute, 2, true},
		{3 * time.Hour, 1, false},
	} {
		t.Run(tt.ahead.String(), func(t *testing.T) {
			var mu sync.Mutex
			var dates []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				serverNow := time.Now().Add(tt.ahead)
				w.Header().Set("Date", serverNow.UTC().Format(http.TimeFormat))
				mu.Lock()
				dates = append(dates, r.Header.Get("X-Amz-Date"))
				mu.Unlock()
				signed, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
				if err != nil || serverNow.Sub(signed).Abs() > 5*time.Minute {
					w.WriteHeader(http.StatusForbidden)
					fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>Signature expired: %s is now earlier than %s</Message></Error></ErrorResponse>`,
						r.Header.Get("X-Amz-Date"), serverNow.UTC().Format("20060102T150405Z"))
					return
				}
				io.WriteString(w, `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/u</Arn><Account>123456789012</Account><UserId>AIDA</UserId></GetCallerIdentityResult></GetCallerIdentityResponse>`)
			}))
			defer srv.Close()
			signer := &sigv4.Signer{}
			c := &STSClient{Endpoint: srv.URL, Signer: signer}
			id, err := c.GetCallerIdentity(context.Background(), Credentials{AccessKeyID: "AKID", SecretAccessKey: "sk"})
			if tt.ok {
				if err != nil {
					t.Fatalf("GetCallerIdentity against a skewed server: %v", err)
				}
				if id.ARN != "arn:aws:iam::123456789012:user/u" {
					t.Errorf("ARN = %s", id.ARN)
				}
			} else {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.Code != "SignatureDoesNotMatch" {
					t.Fatalf("GetCallerIdentity = %v, want the refusal", err)
				}
				if skew := signer.ClockSkewOffset(); skew != 0 {
					t.Errorf("learned a skew of %v, past sigv4.MaxClockSkew", skew)
				}
			}
			if len(dates) != tt.requests {
				t.Errorf("requests = %d (X-Amz-Date %v), want %d", len(dates), dates, tt.requests)
			}
		})
	}
}

// TestSTSDoesNotFollowRedirects: an endpoint that redirects must not get the web
// identity token (or a signed request) re-sent to the redirect's target, with the
// default client or one given.
func TestSTSDoesNotFollowRedirects(t *testing.T) {
	clearAWSEnv(t)
	const token = "eyJhbGciOiJSUzI1NiJ9.redirect-me.c2ln"
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(target.Close)
	given := &http.Client{}
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/stolen", status)
		}))
		t.Cleanup(redirector.Close)
		for _, client := range []struct {
			name string
			hc   *http.Client
		}{{"default client", nil}, {"given client", given}} {
			t.Run(fmt.Sprintf("%d %s", status, client.name), func(t *testing.T) {
				c := &STSClient{Endpoint: redirector.URL, Region: "us-east-1", HTTPClient: client.hc}
				_, err := c.AssumeRoleWithWebIdentity(context.Background(), AssumeRoleWithWebIdentityInput{
					RoleARN: "arn:aws:iam::123456789012:role/pod", RoleSessionName: "s", WebIdentityToken: token,
				})
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.StatusCode != status {
					t.Errorf("AssumeRoleWithWebIdentity = %v, want an *APIError with status %d", err, status)
				}
				if err != nil && strings.Contains(err.Error(), token) {
					t.Errorf("error shows the token: %v", err)
				}
				_, err = c.GetCallerIdentity(context.Background(), Credentials{AccessKeyID: "AKID", SecretAccessKey: "sk"})
				if !errors.As(err, &apiErr) || apiErr.StatusCode != status {
					t.Errorf("GetCallerIdentity = %v, want an *APIError with status %d", err, status)
				}
				if n := targetHits.Load(); n != 0 {
					t.Fatalf("the redirect target was hit %d times", n)
				}
			})
		}
	}
	if given.CheckRedirect != nil {
		t.Error("the given client was modified")
	}
}
