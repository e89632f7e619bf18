package testenv

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MotoServer is a running moto_server with signature checking on.
type MotoServer struct {
	URL             string // "http://127.0.0.1:PORT"; moto serves every service on it
	Region          string // "us-east-1"
	AccountID       string // "123456789012", moto's default account
	AccessKeyID     string // the IAM user "admin": allow-all policy, signature-checked
	SecretAccessKey string

	proc *process
}

// Output returns the tail of moto's log, for diagnosing a test failure.
func (m *MotoServer) Output() string { return m.proc.Output() }

// motoSetupActions is how many requests pass unchecked: CreateUser, PutUserPolicy and
// CreateAccessKey. Every request after them is signature-checked and policy-enforced.
const motoSetupActions = 3

// Moto starts a real moto_server (moto 5) on a free loopback port with
// INITIAL_NO_AUTH_ACTION_COUNT set so that only the IAM admin setup goes unchecked: the
// helper creates IAM user "admin" with an allow-all inline policy and an access key; every
// later request's SigV4 signature is verified and IAM policy enforced. The server is
// stopped by t.Cleanup. The test is skipped when moto_server is missing (failed when
// CHANCERY_TEST_REQUIRE=all).
func Moto(t testing.TB) *MotoServer {
	t.Helper()
	bin := Require(t, "moto_server")
	m := &MotoServer{Region: "us-east-1", AccountID: "123456789012"}
	startWithPortRetry(t, "moto_server", func(port int) error {
		m.URL = "http://127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
		cmd.Env = append(os.Environ(),
			"INITIAL_NO_AUTH_ACTION_COUNT="+strconv.Itoa(motoSetupActions),
			"AWS_DEFAULT_REGION="+m.Region,
			"MOTO_ALLOW_NONEXISTENT_REGION=false",
		)
		p, err := start(t, "moto_server", cmd, 60*time.Second, func(ctx context.Context) error {
			// The dashboard is not an AWS action, so polling it does not use up the
			// unchecked setup requests.
			return httpOK(ctx, m.URL+"/moto-api/")
		})
		if err != nil {
			return err
		}
		m.proc = p
		return nil
	})
	if err := m.setupAdmin(); err != nil {
		t.Fatalf("testenv: moto IAM setup: %v\nmoto output:\n%s", err, m.Output())
	}
	return m
}

// setupAdmin creates the admin user, its policy and access key while moto still accepts
// unsigned requests. Moto routes by the credential scope, so the placeholder
// Authorization header only names the service.
func (m *MotoServer) setupAdmin() error {
	const policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
	steps := []url.Values{
		{"Action": {"CreateUser"}, "UserName": {"admin"}},
		{"Action": {"PutUserPolicy"}, "UserName": {"admin"}, "PolicyName": {"allow-all"}, "PolicyDocument": {policy}},
		{"Action": {"CreateAccessKey"}, "UserName": {"admin"}},
	}
	var last []byte
	for _, form := range steps {
		form.Set("Version", "2010-05-08")
		body, err := m.unsignedIAM(form)
		if err != nil {
			return err
		}
		last = body
	}
	var out struct {
		AccessKeyID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		SecretAccessKey string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	if err := xml.Unmarshal(last, &out); err != nil {
		return fmt.Errorf("parse CreateAccessKey reply: %w", err)
	}
	if out.AccessKeyID == "" || out.SecretAccessKey == "" {
		return fmt.Errorf("CreateAccessKey reply has no key: %.300s", last)
	}
	m.AccessKeyID, m.SecretAccessKey = out.AccessKeyID, out.SecretAccessKey
	return nil
}

func (m *MotoServer) unsignedIAM(form url.Values) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, m.URL+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIASETUPSETUPSETUP0/20000101/"+m.Region+
		"/iam/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("IAM %s: %w", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("IAM %s: read reply: %w", form.Get("Action"), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("IAM %s: %s: %.300s", form.Get("Action"), resp.Status, body)
	}
	return body, nil
}

// httpOK returns nil when a GET of url answers 200.
func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
