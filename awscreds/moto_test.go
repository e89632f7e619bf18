package awscreds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/chancery/chancery/internal/testenv"
)

// motoEnv is a moto server with signature checking on, and the admin's credentials.
type motoEnv struct {
	*testenv.MotoServer
	admin Credentials
	sts   *STSClient
}

func startMoto(t *testing.T) *motoEnv {
	t.Helper()
	m := testenv.Moto(t)
	return &motoEnv{
		MotoServer: m,
		admin:      Credentials{AccessKeyID: m.AccessKeyID, SecretAccessKey: m.SecretAccessKey},
		sts:        &STSClient{Endpoint: m.URL, Region: m.Region},
	}
}

// sdkConfig is an aws-sdk-go-v2 configuration for creds against moto: the SDK is the
// peer that creates IAM fixtures and cross-checks what we get.
func (m *motoEnv) sdkConfig(creds Credentials) aws.Config {
	return aws.Config{
		Region:       m.Region,
		BaseEndpoint: aws.String(m.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}, nil
		}),
	}
}

const allowAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`

// createRole creates an IAM role with trust policy trust and an allow-all inline
// policy, returning its ARN.
func (m *motoEnv) createRole(t *testing.T, name, trust string) string {
	t.Helper()
	ctx := context.Background()
	client := iam.NewFromConfig(m.sdkConfig(m.admin))
	out, err := client.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatalf("creating role %s in moto: %v\n%s", name, err, m.Output())
	}
	if _, err := client.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("all"), PolicyDocument: aws.String(allowAll)}); err != nil {
		t.Fatalf("putting policy on role %s: %v", name, err)
	}
	return aws.ToString(out.Role.Arn)
}

// trust is a trust policy letting principals assume the role, with externalID
// required when not empty. moto matches principals by exact ARN.
func trust(externalID string, principals ...string) string {
	p, _ := json.Marshal(principals)
	cond := ""
	if externalID != "" {
		cond = fmt.Sprintf(`,"Condition":{"StringEquals":{"sts:ExternalId":%q}}`, externalID)
	}
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":%s},"Action":"sts:AssumeRole"%s}]}`, p, cond)
}

func (m *motoEnv) adminARN() string { return fmt.Sprintf("arn:aws:iam::%s:user/admin", m.AccountID) }

// checkIdentity asks STS who creds are, with our client and with the SDK's, and
// checks both say wantARN.
func (m *motoEnv) checkIdentity(t *testing.T, creds Credentials, wantARN string) {
	t.Helper()
	id, err := m.sts.GetCallerIdentity(context.Background(), creds)
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if id.ARN != wantARN || id.Account != m.AccountID {
		t.Errorf("GetCallerIdentity = %+v, want ARN %s in account %s", id, wantARN, m.AccountID)
	}
	peer, err := sts.NewFromConfig(m.sdkConfig(creds)).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("aws-sdk-go-v2 GetCallerIdentity with our credentials: %v", err)
	}
	if aws.ToString(peer.Arn) != wantARN {
		t.Errorf("aws-sdk-go-v2 GetCallerIdentity ARN = %s, want %s", aws.ToString(peer.Arn), wantARN)
	}
}

func TestMotoAssumeRole(t *testing.T) {
	clearAWSEnv(t)
	m := startMoto(t)
	roleARN := m.createRole(t, "app", trust("ext-1", m.adminARN()))

	p := &AssumeRole{STS: m.sts, Source: Static(m.admin), RoleARN: roleARN, RoleSessionName: "build-42", ExternalID: "ext-1", Duration: 20 * time.Minute}
	creds := mustRetrieve(t, p)
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" || !creds.CanExpire || creds.Source != SourceAssumeRole {
		t.Errorf("assumed credentials = %v", creds)
	}
	m.checkIdentity(t, creds, fmt.Sprintf("arn:aws:sts::%s:assumed-role/app/build-42", m.AccountID))

	if life := time.Until(creds.Expires); life > 21*time.Minute || life < 19*time.Minute {
		t.Errorf("credentials expire in %v, want the 20m asked for", life)
	}
	// The admin's own identity, for contrast.
	m.checkIdentity(t, m.admin, m.adminARN())

	// The trust policy's ExternalId condition is enforced, so the one above was sent.
	p.ExternalID = "wrong"
	_, err := p.Retrieve(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "AccessDenied" || apiErr.StatusCode != http.StatusForbidden {
		t.Errorf("AssumeRole with a wrong external id: %v, want 403 AccessDenied", err)
	}
}

// startMotoWithoutAuth runs moto with request authentication off. moto 5.2 cannot
// serve the unsigned AssumeRoleWithWebIdentity while authentication is on (its auth
// layer fails with a KeyError on the missing Authorization header and answers 500, to
// aws-sdk-go-v2 as well as to us), so the web identity test runs here.
func startMotoWithoutAuth(t *testing.T) *motoEnv {
	t.Helper()
	bin := testenv.Require(t, "moto_server")
	port := strconv.Itoa(testenv.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-H", "127.0.0.1", "-p", port)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting moto_server: %v", err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	u := "http://127.0.0.1:" + port
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(u + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s: %v", u, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m := &testenv.MotoServer{URL: u, Region: "us-east-1", AccountID: "123456789012", AccessKeyID: "AKIAUNCHECKED", SecretAccessKey: "unchecked"}
	return &motoEnv{
		MotoServer: m,
		admin:      Credentials{AccessKeyID: m.AccessKeyID, SecretAccessKey: m.SecretAccessKey},
		sts:        &STSClient{Endpoint: m.URL, Region: m.Region},
	}
}

func TestMotoAssumeRoleWithWebIdentity(t *testing.T) {
	clearAWSEnv(t)
	m := startMotoWithoutAuth(t)
	const issuer = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::%s:oidc-provider/%s"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:sub":"system:serviceaccount:default:app"}}}]}`, m.AccountID, issuer, issuer)
	roleARN := m.createRole(t, "irsa", trust)

	tokenFile := filepath.Join(t.TempDir(), "token")
	// moto does not verify the token (nor the trust policy's conditions on it); a real
	// STS checks it against the issuer's keys. TestWebIdentityRereadsToken shows what
	// is sent.
	if err := os.WriteFile(tokenFile, []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphcHAifQ.c2ln\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ROLE_ARN", roleARN)
	t.Setenv("AWS_ROLE_SESSION_NAME", "pod-7")
	t.Setenv("AWS_REGION", m.Region)
	t.Setenv("AWS_ENDPOINT_URL_STS", m.URL)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	// Through the default chain, as a pod would.
	creds := mustRetrieve(t, DefaultChain(Options{}))
	if creds.Source != SourceWebIdentity || !creds.CanExpire || creds.SessionToken == "" {
		t.Errorf("credentials = %v, want web identity", creds)
	}
	m.checkIdentity(t, creds, fmt.Sprintf("arn:aws:sts::%s:assumed-role/irsa/pod-7", m.AccountID))
}

func TestMotoWrongSecretRefused(t *testing.T) {
	clearAWSEnv(t)
	m := startMoto(t)
	bad := Credentials{AccessKeyID: m.AccessKeyID, SecretAccessKey: "not-the-secret"}
	_, err := m.sts.GetCallerIdentity(context.Background(), bad)
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("GetCallerIdentity with a wrong secret: %v, want an *APIError", err)
	}
	if apiErr.StatusCode != http.StatusForbidden || apiErr.Code != "SignatureDoesNotMatch" || apiErr.Message == "" {
		t.Errorf("APIError = %+v, want 403 SignatureDoesNotMatch with a message", apiErr)
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("error leaks the secret: %v", err)
	}

	_, err = m.sts.AssumeRole(context.Background(), Credentials{AccessKeyID: "AKIAUNKNOWN000000000", SecretAccessKey: "x"},
		AssumeRoleInput{RoleARN: "arn:aws:iam::123456789012:role/none", RoleSessionName: "s"})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
		t.Errorf("AssumeRole with an unknown key: %v, want a 403 *APIError", err)
	}
}

func TestMotoSharedConfigRoleChain(t *testing.T) {
	clearAWSEnv(t)
	m := startMoto(t)
	first := m.createRole(t, "first", trust("ext-1", m.adminARN()))
	// Chained: the session of the first role assumes the second.
	second := m.createRole(t, "second", trust("", m.adminARN(), fmt.Sprintf("arn:aws:sts::%s:assumed-role/first/hop-1", m.AccountID)))
	writeSharedFiles(t, fmt.Sprintf(`
[profile first]
role_arn = %s
source_profile = base
role_session_name = hop-1
external_id = ext-1
duration_seconds = 1800

[profile second]
role_arn = %s
source_profile = first
role_session_name = hop-2

[profile self]
aws_access_key_id = %s
aws_secret_access_key = %s
role_arn = %s
source_profile = self
role_session_name = selfie
`, first, second, m.AccessKeyID, m.SecretAccessKey, second), fmt.Sprintf(`
[base]
aws_access_key_id = %s
aws_secret_access_key = %s
`, m.AccessKeyID, m.SecretAccessKey))
	t.Setenv("AWS_ENDPOINT_URL_STS", m.URL)
	t.Setenv("AWS_REGION", m.Region)

	tests := []struct{ profile, wantARN string }{
		{"first", fmt.Sprintf("arn:aws:sts::%s:assumed-role/first/hop-1", m.AccountID)},
		{"second", fmt.Sprintf("arn:aws:sts::%s:assumed-role/second/hop-2", m.AccountID)},
		{"self", fmt.Sprintf("arn:aws:sts::%s:assumed-role/second/selfie", m.AccountID)},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			t.Setenv("AWS_PROFILE", tt.profile)
			creds := mustRetrieve(t, DefaultChain(Options{}))
			if creds.Source != SourceAssumeRole {
				t.Errorf("Source = %s, want %s", creds.Source, SourceAssumeRole)
			}
			m.checkIdentity(t, creds, tt.wantARN)
		})
	}

	// credential_source = Environment: the role is assumed with the environment's keys.
	t.Run("credential_source", func(t *testing.T) {
		writeSharedFiles(t, fmt.Sprintf("[profile ci]\nrole_arn = %s\ncredential_source = Environment\nrole_session_name = from-env\n", second), "")
		t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKeyID)
		t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretAccessKey)
		creds := mustRetrieve(t, &SharedConfig{Profile: "ci"})
		m.checkIdentity(t, creds, fmt.Sprintf("arn:aws:sts::%s:assumed-role/second/from-env", m.AccountID))
	})
}

// TestMotoSignedUnsentGetCallerIdentity checks the request NewGetCallerIdentityRequest
// builds can be sent later, by someone else, and verifies there.
func TestMotoSignedUnsentGetCallerIdentity(t *testing.T) {
	clearAWSEnv(t)
	m := startMoto(t)
	req, err := m.sts.NewGetCallerIdentityRequest(context.Background(), m.admin)
	if err != nil {
		t.Fatal(err)
	}
	if req.GetBody == nil || !strings.HasPrefix(req.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+m.AccessKeyID+"/") {
		t.Fatalf("request not signed for replay: GetBody %v, Authorization %q", req.GetBody != nil, req.Header.Get("Authorization"))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("sending the signed request: HTTP %d, want 200", resp.StatusCode)
	}
}
