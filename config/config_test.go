package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chancery/chancery/config"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chancery.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := config.Load("../chancery.example.yaml", nil)
	if err != nil {
		t.Fatalf("load example: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("example config does not validate: %v", err)
	}
	if cfg.KeyBroker == nil || len(cfg.KeyBroker.Bindings) != 2 || cfg.Store.Driver != "sqlite" {
		t.Errorf("example config lost its sections: %+v", cfg)
	}
}

func TestLoadPrecedence(t *testing.T) {
	path := writeFile(t, "listen: 127.0.0.1:9000\nlog:\n  level: debug\n")
	cfg, err := config.Load(path, []string{
		"CHANCERY_LOG_FORMAT=json",
		"CHANCERY_SHUTDOWN_TIMEOUT=5s",
		"CHANCERY_UNRELATED=1", // other tools' CHANCERY_ variables are not errors
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.Listen = "127.0.0.1:9000"
	want.Log = config.Log{Level: "debug", Format: "json"}
	want.ShutdownTimeout = 5 * time.Second
	if cfg != want {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}

	// The environment beats the file.
	cfg, err = config.Load(path, []string{"CHANCERY_LISTEN=127.0.0.1:9100"})
	if err != nil || cfg.Listen != "127.0.0.1:9100" {
		t.Fatalf("env override: listen = %q, err %v", cfg.Listen, err)
	}
}

func TestKeyBrokerNeedsADatabase(t *testing.T) {
	path := writeFile(t, "keybroker:\n  server_id: s\n  bindings:\n    - {role: 'arn:aws:iam::1:role/x', tenant: t}\n")
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "state_dir: the keybroker keeps its keys") {
		t.Fatalf("keybroker without a state dir: %v", err)
	}
	cfg.Store.Driver, cfg.Store.DSN = "postgres", "postgres://db/chancery"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("keybroker on postgres needs no state dir: %v", err)
	}
	cfg, _ = config.Load(path, []string{"CHANCERY_KEYBROKER_SERVER_ID=from-env", "CHANCERY_STORE_DSN=postgres://x/y", "CHANCERY_STORE_DRIVER=postgres"})
	if cfg.KeyBroker.ServerID != "from-env" || cfg.Store.DSN != "postgres://x/y" {
		t.Fatalf("env overrides: %+v %+v", cfg.KeyBroker, cfg.Store)
	}
	if _, err := config.Load("", []string{"CHANCERY_KEYBROKER_SERVER_ID=x"}); err == nil {
		t.Fatal("overriding a keybroker setting without a keybroker section was accepted")
	}
}

func TestLoadEmptyFileKeepsDefaults(t *testing.T) {
	cfg, err := config.Load(writeFile(t, "# nothing\n"), nil)
	if err != nil || cfg != config.Default() {
		t.Fatalf("got %+v, %v; want defaults", cfg, err)
	}
}

func TestLoadReportsEveryProblemWithItsLine(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string // one per problem, in order
	}{
		{"unknown keys", "listen: 127.0.0.1:1\nlisen: x\nlog:\n  colour: red\n",
			[]string{`:2: unknown key "lisen"`, `:4: unknown key "colour"`}},
		{"wrong types", "shutdown_timeout: soon\nlog: 3\n",
			[]string{`:1: "soon" is not a duration`, `:2: "3" is not a mapping`}},
		{"syntax", "listen: [\n", []string{`:1: did not find expected node content`}},
		{"indentation", "listen: a\n  b: c\n", []string{`:2: mapping values are not allowed`}},
		{"two documents", "listen: a\n---\nlisten: b\n", []string{"more than one YAML document"}},
		{"tab", "log:\n\tlevel: info\n", []string{":2: found character that cannot start any token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			_, err := config.Load(path, nil)
			problems := config.Problems(err)
			if len(problems) != len(tt.want) {
				t.Fatalf("got %d problems %q, want %d", len(problems), problems, len(tt.want))
			}
			for i, p := range problems {
				if !strings.HasPrefix(p.Error(), path) || !strings.Contains(p.Error(), tt.want[i]) {
					t.Errorf("problem %d = %q, want it to start with the file and contain %q", i, p, tt.want[i])
				}
				if strings.Contains(p.Error(), "\n") {
					t.Errorf("problem %d spans lines: %q", i, p)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	var readErr *config.ReadError
	if !errors.As(err, &readErr) || !errors.Is(err, fs.ErrNotExist) ||
		err.Error() != "config file "+readErr.Path+": no such file or directory" {
		t.Fatalf("err = %v, want a not-exist error naming the file", err)
	}
}

func TestLoadBadEnvironment(t *testing.T) {
	_, err := config.Load("", []string{"CHANCERY_SHUTDOWN_TIMEOUT=forever"})
	if err == nil || !strings.Contains(err.Error(), "CHANCERY_SHUTDOWN_TIMEOUT") {
		t.Fatalf("err = %v, want one naming the variable", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   []string
	}{
		{"defaults", func(*config.Config) {}, nil},
		{"port zero", func(c *config.Config) { c.Listen = "127.0.0.1:0" }, nil},
		{"ipv6", func(c *config.Config) { c.Listen = "[::1]:7700" }, nil},
		{"all interfaces", func(c *config.Config) { c.Listen = ":7700" }, nil},
		{"empty listen", func(c *config.Config) { c.Listen = "" }, []string{"listen: must be set"}},
		{"no port", func(c *config.Config) { c.Listen = "127.0.0.1" }, []string{`listen: "127.0.0.1" is not host:port`}},
		{"bad port", func(c *config.Config) { c.Listen = "127.0.0.1:http" }, []string{`listen: port "http"`}},
		{"port too big", func(c *config.Config) { c.Listen = "127.0.0.1:70000" }, []string{`listen: port "70000"`}},
		{"hostname", func(c *config.Config) { c.Listen = "example.com:80" }, []string{`listen: host "example.com"`}},
		{"several at once", func(c *config.Config) {
			c.ShutdownTimeout = 0
			c.Log = config.Log{Level: "loud", Format: "xml"}
		}, []string{"shutdown_timeout: must be positive", `log.level: "loud"`, `log.format: "xml"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			tt.mutate(&cfg)
			problems := config.Problems(cfg.Validate())
			if len(problems) != len(tt.want) {
				t.Fatalf("got problems %q, want %q", problems, tt.want)
			}
			for i, p := range problems {
				if !strings.HasPrefix(p.Error(), tt.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, p, tt.want[i])
				}
			}
		})
	}
}

// FuzzLoad feeds arbitrary bytes to the config decoder: it must never panic, and every
// error must be one line per problem naming the file.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("../chancery.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("log: {level: 3}\nfoo: 1\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte("keybroker:\n  bindings:\n    - role: x\n      ttl: -1s\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path, nil)
		for _, p := range config.Problems(err) {
			if !strings.HasPrefix(p.Error(), path) {
				t.Fatalf("problem %q does not name the file", p)
			}
		}
		if err == nil {
			_ = cfg.Validate()
		}
	})
}
