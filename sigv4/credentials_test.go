package sigv4_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chancery/chancery/sigv4"
)

// TestCredentialsRedacted prints credentials every way a program might, directly and
// inside the structs that hold them, and looks for the secrets in the output.
func TestCredentialsRedacted(t *testing.T) {
	const secret, token = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY", "SESSIONTOKENSECRET"
	creds := sigv4.Credentials{
		AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: secret, SessionToken: token,
		Source: "test", CanExpire: true, Expires: time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC),
	}
	static := sigv4.StaticCredentials(creds)
	// slog's JSON handler marshals a struct that holds credentials with encoding/json,
	// which knows nothing of LogValue: only the values themselves are logged as JSON.
	values := []struct {
		name   string
		v      any
		nested bool
	}{
		{"Credentials", creds, false},
		{"*Credentials", &creds, false},
		{"StaticCredentials", static, false},
		{"*StaticCredentials", &static, false},
		{"in a ProxyConfig", sigv4.ProxyConfig{Upstream: "https://sqs.us-east-1.amazonaws.com", Credentials: static}, true},
		{"in a Transport", &sigv4.Transport{Credentials: static}, true},
	}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			t.Run(v.name+" "+verb, func(t *testing.T) {
				out := fmt.Sprintf(verb, v.v)
				if strings.Contains(out, secret) || strings.Contains(out, token) {
					t.Errorf("%s printed a secret: %s", verb, out)
				}
				if !strings.Contains(out, "AKIDEXAMPLE") {
					t.Errorf("%s hid the access key id too: %s", verb, out)
				}
			})
		}
		for _, h := range []struct {
			name string
			new  func(*bytes.Buffer) slog.Handler
		}{
			{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
			{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		} {
			if v.nested && h.name == "json" {
				continue
			}
			t.Run(v.name+" slog "+h.name, func(t *testing.T) {
				var buf bytes.Buffer
				slog.New(h.new(&buf)).Info("credentials", "creds", v.v)
				if out := buf.String(); strings.Contains(out, secret) || strings.Contains(out, token) {
					t.Errorf("slog %s handler logged a secret: %s", h.name, out)
				}
			})
		}
	}
}
