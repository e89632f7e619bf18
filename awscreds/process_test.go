package awscreds

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProcess(t *testing.T) {
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	doc := `{"Version": 1, "AccessKeyId": "AKPROC", "SecretAccessKey": "proc-sekrit", "SessionToken": "tok", "Expiration": "` + exp.Format(time.RFC3339) + `"}`
	tests := []struct {
		name    string
		command string
		timeout time.Duration
		want    Credentials
		wantErr string
	}{
		{
			name:    "full document",
			command: "printf '%s' '" + doc + "'",
			want:    Credentials{AccessKeyID: "AKPROC", SecretAccessKey: "proc-sekrit", SessionToken: "tok", Source: SourceProcess, CanExpire: true, Expires: exp},
		},
		{
			name:    "no expiration",
			command: `echo '{"Version":1,"AccessKeyId":"AKPROC","SecretAccessKey":"proc-sekrit"}'`,
			want:    Credentials{AccessKeyID: "AKPROC", SecretAccessKey: "proc-sekrit", Source: SourceProcess},
		},
		{name: "stderr not in error", command: "echo proc-sekrit >&2; exit 3", wantErr: "command exited with status 3"},
		{name: "version 2", command: `echo '{"Version":2,"AccessKeyId":"A","SecretAccessKey":"proc-sekrit"}'`, wantErr: "unsupported Version 2"},
		{name: "not json", command: "echo proc-sekrit", wantErr: "not a JSON credentials document"},
		{name: "bad expiration", command: `echo '{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s","Expiration":"proc-sekrit"}'`, wantErr: "RFC 3339"},
		{name: "missing secret", command: `echo '{"Version":1,"AccessKeyId":"A"}'`, wantErr: "lacks AccessKeyId or SecretAccessKey"},
		{name: "output too large", command: "head -c 100000 /dev/zero", wantErr: "output larger than"},
		{name: "timeout", command: "sleep 10", timeout: 100 * time.Millisecond, wantErr: "deadline exceeded"},
		{name: "timeout with grandchild holding stdout", command: "sleep 10 & sleep 10", timeout: 100 * time.Millisecond, wantErr: "deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got, err := (&Process{Command: tt.command, Timeout: tt.timeout}).Retrieve(context.Background())
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Retrieve took %v", took)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Retrieve error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "proc-sekrit") {
					t.Errorf("error leaks process output: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Retrieve: %v", err)
			}
			if got != tt.want {
				t.Errorf("Retrieve = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProcessNotConfigured(t *testing.T) {
	if _, err := (&Process{}).Retrieve(context.Background()); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("empty command: %v, want ErrNotConfigured", err)
	}
}

func FuzzParseProcessOutput(f *testing.F) {
	f.Add([]byte(`{"Version":1,"AccessKeyId":"A","SecretAccessKey":"S","SessionToken":"T","Expiration":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"Version":1}`))
	f.Add([]byte(`{"Version":"1"}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseProcessOutput(data)
		if err != nil {
			if c != (Credentials{}) {
				t.Errorf("credentials %v returned with error %v", c, err)
			}
			return
		}
		if !c.HasKeys() || c.Source != SourceProcess {
			t.Errorf("accepted document gave incomplete credentials %v", c)
		}
	})
}

func FuzzParseCredentialsDocument(f *testing.F) {
	f.Add([]byte(`{"Code":"Success","AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"2026-01-01T00:00:00Z","RoleArn":"arn"}`))
	f.Add([]byte(`{"Code":"AssumeRoleUnauthorizedAccess","Message":"m"}`))
	f.Add([]byte(`{"Expiration":"yesterday"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCredentialsDocument(data, SourceIMDS)
		if err != nil {
			if c != (Credentials{}) {
				t.Errorf("credentials %v returned with error %v", c, err)
			}
			return
		}
		if !c.HasKeys() {
			t.Errorf("accepted document gave incomplete credentials %v", c)
		}
	})
}

func TestProcessStderrOption(t *testing.T) {
	var stderr strings.Builder
	p := &Process{Command: `echo diagnostics >&2; echo '{"Version":1,"AccessKeyId":"A","SecretAccessKey":"S"}'`, Stderr: &stderr}
	mustRetrieve(t, p)
	if stderr.String() != "diagnostics\n" {
		t.Errorf("Stderr got %q, want the command's standard error", stderr.String())
	}
}
