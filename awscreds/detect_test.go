package awscreds

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// detectHangGuard is far above Detect's budget: it catches a probe that waits on the
// network without a deadline, and is not a performance target.
const detectHangGuard = 5 * time.Second

func detectTimed(t *testing.T) (string, bool) {
	t.Helper()
	start := time.Now()
	source, ok := Detect(context.Background())
	took := time.Since(start)
	t.Logf("Detect took %v", took)
	if took > detectHangGuard {
		t.Errorf("Detect took %v: the IMDS probe is not bounded", took)
	}
	return source, ok
}

func TestDetectConfiguredSources(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		env    map[string]string
		config string
		want   string
	}{
		{name: "env", env: map[string]string{"AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S"}, want: SourceEnv},
		{name: "profile with keys", config: "[default]\naws_access_key_id = A\naws_secret_access_key = S\n", want: SourceSharedConfig},
		{name: "profile with role", config: "[profile x]\nrole_arn = arn\nsource_profile = y\n", env: map[string]string{"AWS_PROFILE": "x"}, want: SourceSharedConfig},
		{name: "web identity", env: map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_ARN": "arn"}, want: SourceWebIdentity},
		{name: "ecs", env: map[string]string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"}, want: SourceContainer},
		{name: "eks pod identity", env: map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials"}, want: SourceContainer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearAWSEnv(t)
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			if tt.config != "" {
				writeSharedFiles(t, tt.config, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if source, ok := detectTimed(t); !ok || source != tt.want {
				t.Errorf("Detect = %q, %v; want %q", source, ok, tt.want)
			}
		})
	}
}

func TestDetectIMDS(t *testing.T) {
	clearAWSEnv(t)
	f, srv := newFakeIMDS(t)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
	if source, ok := detectTimed(t); !ok || source != SourceIMDS {
		t.Errorf("Detect with an IMDS role = %q, %v; want imds", source, ok)
	}
	f.mu.Lock()
	f.role = ""
	f.mu.Unlock()
	if source, ok := detectTimed(t); ok {
		t.Errorf("Detect on an instance without a role = %q, want none", source)
	}
	f.mu.Lock()
	f.role = "app-role"
	f.mu.Unlock()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	before, _ := f.counts()
	if source, ok := detectTimed(t); ok {
		t.Errorf("Detect with IMDS disabled = %q, want none", source)
	}
	if after, _ := f.counts(); after != before {
		t.Error("Detect contacted IMDS although it is disabled")
	}
}

func TestDetectNotOnAWS(t *testing.T) {
	// A port nothing listens on: connection refused, not retried.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String()
	closed.Close()

	// A listener that accepts and never answers, like a black-holing firewall or
	// a wedged proxy.
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		hole.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})

	// A server that answers 404 to everything, like a non-AWS web server.
	notFound := httptest.NewServer(nil)
	defer notFound.Close()

	for name, endpoint := range map[string]string{
		"connection refused": closedURL,
		"black hole":         "http://" + hole.Addr().String(),
		"not IMDS":           notFound.URL,
	} {
		t.Run(name, func(t *testing.T) {
			clearAWSEnv(t)
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint)
			if source, ok := detectTimed(t); ok {
				t.Errorf("Detect = %q, want none", source)
			}
		})
	}
}

func TestDetectHonoursContext(t *testing.T) {
	clearAWSEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, srv := newFakeIMDS(t)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
	if source, ok := Detect(ctx); ok {
		t.Errorf("Detect with a cancelled context = %q, want none", source)
	}
}
