package awscreds

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSharedFiles writes a config and a credentials file and points the environment
// at them.
func writeSharedFiles(t *testing.T, config, credentials string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"config": config, "credentials": credentials} {
		if body == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
}

func TestSharedConfigStatic(t *testing.T) {
	const config = `
[default]
region = eu-west-1
aws_access_key_id = AKCONFIGDEFAULT
aws_secret_access_key = config-sekrit

[profile dev]
aws_access_key_id = AKCONFIGDEV
aws_secret_access_key = config-sekrit
region = us-west-2

[dev]
aws_access_key_id = AKNOTAPROFILE
aws_secret_access_key = config-sekrit

[sso-session corp]
sso_start_url = https://example.awsapps.com/start

[profile proc]
credential_process = echo '{"Version":1,"AccessKeyId":"AKPROC","SecretAccessKey":"proc-sekrit"}'

[profile empty]
region = us-east-1
`
	const credentials = `
[dev]
aws_access_key_id = AKCREDSDEV
aws_secret_access_key = creds-sekrit
aws_session_token = creds-token

[only-creds]
aws_access_key_id = AKONLYCREDS
aws_secret_access_key = creds-sekrit
`
	tests := []struct {
		name          string
		profile       string // AWS_PROFILE
		field         string // SharedConfig.Profile
		wantID        string
		wantErr       string
		notConfigured bool
	}{
		{name: "default profile", wantID: "AKCONFIGDEFAULT"},
		{name: "credentials file wins over config", profile: "dev", wantID: "AKCREDSDEV"},
		{name: "field wins over AWS_PROFILE", profile: "nope", field: "only-creds", wantID: "AKONLYCREDS"},
		{name: "credential_process", profile: "proc", wantID: "AKPROC"},
		{name: "named profile missing", profile: "missing", wantErr: `profile "missing" not found`},
		{name: "sso-session is not a profile", profile: "sso-session corp", wantErr: "not found"},
		{name: "profile without credentials", profile: "empty", wantErr: "no credential settings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearAWSEnv(t)
			writeSharedFiles(t, config, credentials)
			t.Setenv("AWS_PROFILE", tt.profile)
			creds, err := (&SharedConfig{Profile: tt.field}).Retrieve(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Retrieve error = %v, want one containing %q", err, tt.wantErr)
				}
				if errors.Is(err, ErrNotConfigured) != tt.notConfigured {
					t.Errorf("errors.Is(ErrNotConfigured) = %v, want %v", !tt.notConfigured, tt.notConfigured)
				}
				return
			}
			if err != nil {
				t.Fatalf("Retrieve: %v", err)
			}
			if creds.AccessKeyID != tt.wantID {
				t.Errorf("AccessKeyID = %s, want %s", creds.AccessKeyID, tt.wantID)
			}
		})
	}
}

func TestSharedConfigSessionToken(t *testing.T) {
	clearAWSEnv(t)
	writeSharedFiles(t, "", "[default]\naws_access_key_id = AK\naws_secret_access_key = sk\naws_session_token = st\n")
	got := mustRetrieve(t, &SharedConfig{})
	want := Credentials{AccessKeyID: "AK", SecretAccessKey: "sk", SessionToken: "st", Source: SourceSharedConfig}
	if got != want {
		t.Errorf("Retrieve = %v, want %v", got, want)
	}
}

func TestSharedConfigNotConfigured(t *testing.T) {
	tests := []struct {
		name        string
		config      string
		credentials string
	}{
		{name: "no files"},
		{name: "no default profile", config: "[profile other]\nregion = us-east-1\n"},
		{name: "default profile without credentials", config: "[default]\nregion = us-east-1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearAWSEnv(t)
			writeSharedFiles(t, tt.config, tt.credentials)
			if _, err := (&SharedConfig{}).Retrieve(context.Background()); !errors.Is(err, ErrNotConfigured) {
				t.Errorf("Retrieve = %v, want ErrNotConfigured", err)
			}
		})
	}
}

func TestSharedConfigDefaultPaths(t *testing.T) {
	clearAWSEnv(t)
	home := os.Getenv("HOME")
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte("[default]\naws_access_key_id = AKHOME\naws_secret_access_key = s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := mustRetrieve(t, &SharedConfig{}); got.AccessKeyID != "AKHOME" {
		t.Errorf("AccessKeyID = %s, want AKHOME from ~/.aws/credentials", got.AccessKeyID)
	}
}

// TestSharedConfigRoleErrors covers role profiles that must fail before any call to
// STS: the STS endpoint here refuses connections, so reaching it would show up as a
// connection error instead of the expected message.
func TestSharedConfigRoleErrors(t *testing.T) {
	const config = `
[profile a]
role_arn = arn:aws:iam::123456789012:role/a
source_profile = b

[profile b]
role_arn = arn:aws:iam::123456789012:role/b
source_profile = c

[profile c]
role_arn = arn:aws:iam::123456789012:role/c
source_profile = a

[profile self-no-keys]
role_arn = arn:aws:iam::123456789012:role/s
source_profile = self-no-keys

[profile dangling]
role_arn = arn:aws:iam::123456789012:role/d
source_profile = nowhere

[profile no-source]
role_arn = arn:aws:iam::123456789012:role/n

[profile mfa]
role_arn = arn:aws:iam::123456789012:role/m
source_profile = keys
mfa_serial = arn:aws:iam::123456789012:mfa/user

[profile short]
role_arn = arn:aws:iam::123456789012:role/m
source_profile = keys
duration_seconds = 60

[profile web-no-role]
web_identity_token_file = /nonexistent

[profile sso]
sso_session = corp

[profile bad-source]
role_arn = arn:aws:iam::123456789012:role/m
credential_source = Somewhere

[profile keys]
aws_access_key_id = AK
aws_secret_access_key = sk
`
	tests := []struct{ profile, wantErr string }{
		{"a", "source_profile cycle: a -> b -> c -> a"},
		{"self-no-keys", "source_profile cycle: self-no-keys -> self-no-keys"},
		{"dangling", `source_profile "nowhere" not found`},
		{"no-source", "role_arn needs source_profile, credential_source or web_identity_token_file"},
		{"mfa", "mfa_serial is not supported"},
		{"short", `duration_seconds "60" is not a whole number from 900 to 43200`},
		{"web-no-role", "web_identity_token_file without role_arn"},
		{"sso", "SSO profiles are not supported"},
		{"bad-source", `unknown credential_source "Somewhere"`},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			clearAWSEnv(t)
			writeSharedFiles(t, config, "")
			s := &SharedConfig{Profile: tt.profile, STS: &STSClient{Endpoint: "http://127.0.0.1:1"}}
			_, err := s.Retrieve(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Retrieve error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSharedConfigFileErrors(t *testing.T) {
	clearAWSEnv(t)
	writeSharedFiles(t, "[default\n", "")
	_, err := (&SharedConfig{}).Retrieve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "line 1") || errors.Is(err, ErrNotConfigured) {
		t.Errorf("Retrieve with a malformed config = %v, want a parse error naming the line", err)
	}
}
