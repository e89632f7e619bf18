package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/chancery/chancery/internal/testenv"
)

// executeWithStdin runs a command line in-process with stdin.
func executeWithStdin(t *testing.T, environ []string, stdin string, args ...string) execResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), &cli{args: args, stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr, environ: environ})
	return execResult{code, stdout.String(), stderr.String()}
}

// TestKeybrokerThroughTheCLI runs the product as a user would: `chancery serve` with a
// keybroker in front of moto, `chancery login aws` with a role's credentials in the
// environment, then `chancery keys list` and `keys revoke`.
func TestKeybrokerThroughTheCLI(t *testing.T) {
	m := testenv.Moto(t)
	ctx := context.Background()
	admin := credentials.NewStaticCredentialsProvider(m.AccessKeyID, m.SecretAccessKey, "")
	iamc := iam.New(iam.Options{Region: m.Region, BaseEndpoint: aws.String(m.URL), Credentials: admin})
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + m.AccountID + `:user/admin"},"Action":"sts:AssumeRole"}]}`
	role, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("web-frontend"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	assumed, err := sts.New(sts.Options{Region: m.Region, BaseEndpoint: aws.String(m.URL), Credentials: admin}).
		AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("pod-1")})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "chancery.yaml")
	cfg := `listen: 127.0.0.1:0
state_dir: ` + filepath.Join(dir, "state") + `
keybroker:
  server_id: e2e-broker
  sts_endpoints: [` + m.URL + `]
  sync_interval: 300ms
  bindings:
    - role: arn:aws:iam::` + m.AccountID + `:role/web-*
      tenant: acme
      ttl: 2h
      scopes: [secrets:read]
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := execute(t, nil, "config", "check", cfgPath); r.code != 0 {
		t.Fatalf("config check: %+v", r)
	}
	server := startChild(t, dir, nil, "serve", "--config", cfgPath)
	base := "http://" + server.addr

	workload := []string{
		"AWS_ACCESS_KEY_ID=" + aws.ToString(assumed.Credentials.AccessKeyId),
		"AWS_SECRET_ACCESS_KEY=" + aws.ToString(assumed.Credentials.SecretAccessKey),
		"AWS_SESSION_TOKEN=" + aws.ToString(assumed.Credentials.SessionToken),
		"AWS_EC2_METADATA_DISABLED=true",
		"HOME=" + dir,
	}
	login := execute(t, workload, "login", "aws", "--server", base, "--org", "acme",
		"--server-id", "e2e-broker", "--sts-endpoint", m.URL)
	if login.code != 0 {
		t.Fatalf("login aws: %+v\nserver log:\n%s", login, server.stderr)
	}
	key := strings.TrimSpace(login.stdout)
	if !strings.HasPrefix(key, "chy_") {
		t.Fatalf("login printed %q, want the key alone", login.stdout)
	}

	self := func() (int, string) {
		req, _ := http.NewRequest("GET", base+"/v1/keys/self", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := self(); code != 200 || !strings.Contains(body, `"tenant":"acme"`) ||
		!strings.Contains(body, `"identity":"arn:aws:iam::`+m.AccountID+`:role/web-frontend"`) {
		t.Fatalf("/v1/keys/self = %d %s", code, body)
	}

	list := execute(t, nil, "keys", "list", "--config", cfgPath)
	if list.code != 0 || !strings.Contains(list.stdout, "role/web-frontend") || !strings.Contains(list.stdout, "active") ||
		strings.Contains(list.stdout, key) {
		t.Fatalf("keys list: %+v", list)
	}
	revoke := executeWithStdin(t, nil, key+"\n", "keys", "revoke", "--config", cfgPath, "--key-stdin")
	if revoke.code != 0 || revoke.stdout != "revoked 1 key(s)\n" {
		t.Fatalf("keys revoke: %+v", revoke)
	}
	// Another process revoked it in SQLite: the server sees it within sync_interval.
	start := time.Now()
	for {
		code, _ := self()
		if code == 401 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("revoked key still accepted after 10s (status %d)", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("revocation by another process took effect after %s (sync_interval 300ms)", time.Since(start))

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`chancery_keybroker_exchanges_total{outcome="issued"} 1`, "chancery_keybroker_keys_active 0",
		"chancery_keybroker_sts_request_duration_seconds_count 1"} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if bytes.Contains(metrics, []byte(key)) || strings.Contains(server.stderr.String(), key) {
		t.Error("the key leaked into metrics or logs")
	}
}

func TestKeysCommandErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"keys", "list"}, 1, "no database: pass --config"},
		{[]string{"keys", "list", "--state-dir", t.TempDir()}, 1, "no database at "},
		{[]string{"keys", "revoke", "--state-dir", t.TempDir()}, 2, "revoke: say which keys"},
		{[]string{"keys", "revoke", "--key-stdin", "--state-dir", t.TempDir()}, 2, "--key-stdin: no key on stdin"},
	}
	for _, tt := range tests {
		r := execute(t, nil, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: %+v, want exit %d and %q", tt.args, r, tt.code, tt.want)
		}
	}
}
