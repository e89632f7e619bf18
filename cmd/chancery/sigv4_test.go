package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/chancery/chancery/internal/testenv"
)

func TestSigv4UsageErrors(t *testing.T) {
	env := []string{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret"}
	tests := [][]string{
		{"sigv4", "presign"},
		{"sigv4", "presign", "not a url"},
		{"sigv4", "presign", "ftp://examplebucket.s3.amazonaws.com/k"},
		{"sigv4", "presign", "https://example.com/k"}, // no service and region to sign with
		{"sigv4", "presign", "https://examplebucket.s3.amazonaws.com/k", "--expires", "200h"},
		{"sigv4", "proxy"},
		{"sigv4", "proxy", "--upstream", "https://sqs.us-east-1.amazonaws.com", "--listen", "0.0.0.0:0"},
		{"sigv4", "proxy", "--upstream", "https://sqs.us-east-1.amazonaws.com", "--listen", "nonsense"},
		{"sigv4", "proxy", "--upstream", "https://sqs.us-east-1.amazonaws.com", "--payload", "maybe"},
		{"sigv4", "proxy", "--upstream", "http://localhost:4566", "--listen", "127.0.0.1:0"},
		{"sigv4", "proxy", "--upstream", "https://sqs.us-east-1.amazonaws.com", "--listen", "127.0.0.1:0", "--allowed-host", "http://proxy.internal"},
		{"sigv4", "proxy", "--upstream", "https://sqs.us-east-1.amazonaws.com", "--listen", "127.0.0.1:0", "--max-body", "-1"},
		{"sigv4", "nosuch"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := execute(t, env, args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", r.code, exitUsage, r.stderr)
			}
			if strings.Contains(r.stderr, "secret") {
				t.Errorf("stderr mentions the secret: %s", r.stderr)
			}
		})
	}
}

// TestSigv4Presign checks the printed URL against aws-sdk-go-v2's presigner at the same
// signing time.
func TestSigv4Presign(t *testing.T) {
	env := []string{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "AWS_SESSION_TOKEN=tok/en+="}
	const target = "https://examplebucket.s3.eu-west-1.amazonaws.com/reports/2026 q3.pdf"
	r := execute(t, env, "sigv4", "presign", target, "--expires", "1h", "--method", "PUT")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got, err := url.Parse(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	q := got.Query()
	if q.Get("X-Amz-Expires") != "3600" || !strings.HasPrefix(q.Get("X-Amz-Credential"), "AKIDEXAMPLE/") ||
		!strings.HasSuffix(q.Get("X-Amz-Credential"), "/eu-west-1/s3/aws4_request") || q.Get("X-Amz-Security-Token") != "tok/en+=" {
		t.Fatalf("presigned URL lacks the expected parameters: %s", got)
	}
	when, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(target)
	u.RawQuery = "X-Amz-Expires=3600"
	req := &http.Request{Method: http.MethodPut, URL: u, Host: u.Host, Header: http.Header{}}
	want, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "tok/en+="},
		req, "UNSIGNED-PAYLOAD", "s3", "eu-west-1", when)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Errorf("presigned URL\n got %s\nwant %s (aws-sdk-go-v2)", got, want)
	}
}

// TestSigv4ProxyMoto runs the proxy as a process in front of moto (signature checking
// on), sends it an unsigned STS call as curl would, then as a web page would, and
// stops it with SIGTERM.
func TestSigv4ProxyMoto(t *testing.T) {
	m := testenv.Moto(t)
	p := startChild(t, t.TempDir(), []string{"AWS_ACCESS_KEY_ID=" + m.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + m.SecretAccessKey},
		"sigv4", "proxy", "--listen", "127.0.0.1:0", "--upstream", m.URL, "--service", "sts", "--region", m.Region,
		"--allowed-host", "sts-gw.internal")
	for _, tt := range []struct {
		name   string
		host   string
		header http.Header
		want   int
	}{
		{"curl", "", nil, http.StatusOK},
		{"allowed host", "sts-gw.internal:8005", nil, http.StatusOK},
		{"cross-origin form POST", "", http.Header{"Origin": {"https://attacker.example"}}, http.StatusForbidden},
		{"cross-site fetch", "", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"DNS rebinding", "attacker.example:8005", nil, http.StatusForbidden},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.addr+"/", strings.NewReader("Action=GetCallerIdentity&Version=2011-06-15"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range tt.header {
			req.Header[k] = v
		}
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Fatalf("%s: GetCallerIdentity through the proxy: %s %s", tt.name, resp.Status, body)
		}
		if admin := strings.Contains(string(body), ":user/admin"); admin != (tt.want == http.StatusOK) {
			t.Fatalf("%s: reply names the caller: %v: %s", tt.name, admin, body)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("proxy exited with %v after SIGTERM\n%s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("proxy did not exit after SIGTERM")
	}
	if strings.Contains(p.stderr.String(), m.SecretAccessKey) {
		t.Error("the proxy logged the secret key")
	}
}
