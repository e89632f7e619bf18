package awscreds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// clearAWSEnv blanks every variable this package reads and points HOME at an empty
// directory, so a test sees only what it sets.
func clearAWSEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
		}
	}
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
		"AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_STS_REGIONAL_ENDPOINTS",
	} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", t.TempDir())
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		want          Credentials
		wantErr       bool
		notConfigured bool
	}{
		{name: "none", wantErr: true, notConfigured: true},
		{
			name: "standard",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "sekrit", "AWS_SESSION_TOKEN": "TOKEN"},
			want: Credentials{AccessKeyID: "AKID", SecretAccessKey: "sekrit", SessionToken: "TOKEN", Source: SourceEnv},
		},
		{
			name: "aliases",
			env:  map[string]string{"AWS_ACCESS_KEY": "AKID", "AWS_SECRET_KEY": "sekrit"},
			want: Credentials{AccessKeyID: "AKID", SecretAccessKey: "sekrit", Source: SourceEnv},
		},
		{
			name: "standard wins over alias",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_ACCESS_KEY": "OLD", "AWS_SECRET_ACCESS_KEY": "sekrit", "AWS_SECRET_KEY": "oldsekrit"},
			want: Credentials{AccessKeyID: "AKID", SecretAccessKey: "sekrit", Source: SourceEnv},
		},
		{name: "id only", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKID"}, wantErr: true},
		{name: "secret only", env: map[string]string{"AWS_SECRET_ACCESS_KEY": "sekrit"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearAWSEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := Env{}.Retrieve(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Retrieve error = %v, want error %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrNotConfigured) != tt.notConfigured {
				t.Errorf("errors.Is(err, ErrNotConfigured) = %v, want %v", !tt.notConfigured, tt.notConfigured)
			}
			if err != nil && strings.Contains(err.Error(), "sekrit") {
				t.Errorf("error leaks the secret: %v", err)
			}
			if got != tt.want {
				t.Errorf("Retrieve = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatic(t *testing.T) {
	c := Credentials{AccessKeyID: "AKID", SecretAccessKey: "sekrit"}
	got := mustRetrieve(t, Static(c))
	if got.AccessKeyID != "AKID" || got.Source != SourceStatic {
		t.Errorf("Retrieve = %v", got)
	}
	if _, err := (Static{}).Retrieve(context.Background()); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("empty Static: %v, want ErrNotConfigured", err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("creds", "static", Static(c))
	if !strings.Contains(logged.String(), "AKID") {
		t.Errorf("log line lacks the key id: %s", logged.String())
	}
	for _, s := range []string{Static(c).String(), Static(c).GoString(), fmt.Sprintf("%+v", Static(c)), logged.String()} {
		if strings.Contains(s, "sekrit") {
			t.Errorf("String leaks the secret: %s", s)
		}
	}
}
