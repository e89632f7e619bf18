package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/chancery/chancery/keybroker"
	"github.com/chancery/chancery/store"
)

// Config is the whole configuration of a chancery process.
type Config struct {
	// Listen is the API address. Loopback by default: exposing Chancery is a decision.
	Listen string `yaml:"listen"`

	// StateDir holds embedded state (the SQLite database, the local keyring). Empty means
	// no embedded state; `serve --dev` defaults it to ./.chancery.
	StateDir string `yaml:"state_dir"`

	// ShutdownTimeout bounds how long in-flight requests may drain after SIGINT/SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	Log Log `yaml:"log"`

	// Store is the database every capability keeps its state in.
	Store store.Config `yaml:"store"`

	// KeyBroker, when present, serves delegated auth: proofs in, API keys out.
	KeyBroker *keybroker.Config `yaml:"keybroker"`
}

// Log configures the process's structured logs (always on stderr).
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error
	Format string `yaml:"format"` // text or json
}

// Defaults for every setting a file may leave out.
const (
	DefaultListen          = "127.0.0.1:7700"
	DefaultDevStateDir     = ".chancery"
	DefaultShutdownTimeout = 30 * time.Second
)

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:          DefaultListen,
		ShutdownTimeout: DefaultShutdownTimeout,
		Log:             Log{Level: "info", Format: "text"},
	}
}

// Load returns the defaults overlaid with the YAML file at path (when path is not empty)
// and then with CHANCERY_* variables from environ (os.Environ() form). It does not
// validate: call Validate once flags have been applied too.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // ReadError names the path
			}
			return cfg, &ReadError{Path: path, Err: err}
		}
		// Keep going after decoding problems so the caller can report everything at once.
		decodeErr := decode(path, data, &cfg)
		return cfg, errors.Join(decodeErr, applyEnv(&cfg, environ))
	}
	return cfg, applyEnv(&cfg, environ)
}

// ReadError is returned by Load when the file could not be read at all.
type ReadError struct {
	Path string
	Err  error
}

func (e *ReadError) Error() string { return "config file " + e.Path + ": " + e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// yamlLineError matches the messages yaml.v3 gives for an unknown field or a value of
// the wrong type, so they can be reported as "file:line: ...".
var (
	yamlUnknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)
	yamlCannotDecode = regexp.MustCompile(`^line (\d+): cannot unmarshal !!\w+ ` + "`" + `?(.*?)` + "`" + `? into (\S+)$`)
	yamlLinePrefix   = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
)

// decode strictly decodes data into cfg; every problem becomes one line of the error.
func decode(name string, data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(cfg)
	if errors.Is(err, io.EOF) {
		return nil // an empty file is a valid, empty configuration
	}
	if err == nil {
		var extra yaml.Node
		if dec.Decode(&extra) != io.EOF {
			return fmt.Errorf("%s: holds more than one YAML document; put everything in one", name)
		}
		return nil
	}
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) {
		msg := err.Error()
		if m := yamlLinePrefix.FindStringSubmatch(msg); m != nil {
			return fmt.Errorf("%s:%s: %s", name, m[1], m[2])
		}
		return fmt.Errorf("%s: %s", name, strings.TrimPrefix(msg, "yaml: "))
	}
	var problems []error
	for _, e := range typeErr.Errors {
		switch {
		case yamlUnknownField.MatchString(e):
			m := yamlUnknownField.FindStringSubmatch(e)
			problems = append(problems, fmt.Errorf("%s:%s: unknown key %q", name, m[1], m[2]))
		case yamlCannotDecode.MatchString(e):
			m := yamlCannotDecode.FindStringSubmatch(e)
			problems = append(problems, fmt.Errorf("%s:%s: %q is not %s", name, m[1], m[2], describeType(m[3])))
		default:
			problems = append(problems, fmt.Errorf("%s: %s", name, e))
		}
	}
	return errors.Join(problems...)
}

// describeType names a Go type the way a config author thinks of it.
func describeType(goType string) string {
	switch goType {
	case "time.Duration":
		return "a duration (e.g. 30s, 5m)"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "uint32", "int32":
		return "an integer"
	}
	if strings.HasPrefix(goType, "[]") {
		return "a list"
	}
	return "a mapping of keys" // one of our section structs
}

// EnvPrefix starts every environment variable that overrides a setting.
const EnvPrefix = "CHANCERY_"

// envSetting is one setting that an environment variable can override.
type envSetting struct {
	name string // e.g. CHANCERY_LOG_LEVEL
	set  func(cfg *Config, value string) error
}

// envSettings lists the overridable settings; the variable name is the YAML path in
// upper case joined by "_", so the mapping needs no further documentation.
func envSettings() []envSetting {
	return []envSetting{
		{"CHANCERY_LISTEN", func(c *Config, v string) error { c.Listen = v; return nil }},
		{"CHANCERY_STATE_DIR", func(c *Config, v string) error { c.StateDir = v; return nil }},
		{"CHANCERY_SHUTDOWN_TIMEOUT", func(c *Config, v string) (err error) {
			c.ShutdownTimeout, err = time.ParseDuration(v)
			return err
		}},
		{"CHANCERY_LOG_LEVEL", func(c *Config, v string) error { c.Log.Level = v; return nil }},
		{"CHANCERY_LOG_FORMAT", func(c *Config, v string) error { c.Log.Format = v; return nil }},
		{"CHANCERY_STORE_DRIVER", func(c *Config, v string) error { c.Store.Driver = store.Driver(v); return nil }},
		{"CHANCERY_STORE_PATH", func(c *Config, v string) error { c.Store.Path = v; return nil }},
		// The DSN may hold a password: the environment keeps it out of the file.
		{"CHANCERY_STORE_DSN", func(c *Config, v string) error { c.Store.DSN = v; return nil }},
		{"CHANCERY_KEYBROKER_SERVER_ID", func(c *Config, v string) error {
			if c.KeyBroker == nil {
				return errors.New("there is no keybroker section to override")
			}
			c.KeyBroker.ServerID = v
			return nil
		}},
	}
}

func applyEnv(cfg *Config, environ []string) error {
	var problems []error
	settings := envSettings()
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		for _, s := range settings {
			if s.name == name {
				if err := s.set(cfg, value); err != nil {
					problems = append(problems, fmt.Errorf("environment %s=%q: %w", name, value, err))
				}
			}
		}
	}
	return errors.Join(problems...)
}

// Validate reports every problem in cfg, one error per problem, each naming the setting.
func (c Config) Validate() error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	if c.Listen == "" {
		bad("listen: must be set (host:port, e.g. %s)", DefaultListen)
	} else if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen: %q is not host:port", c.Listen)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("listen: port %q is not a number between 0 and 65535", port)
	} else if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		bad("listen: host %q is not an IP address or localhost", host)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout: must be positive, got %s", c.ShutdownTimeout)
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		bad("log.level: %v", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format: %q is not text or json", c.Log.Format)
	}
	if err := c.Store.Validate(); err != nil {
		problems = append(problems, Problems(err)...)
	}
	if c.KeyBroker != nil {
		if err := c.KeyBroker.Validate(); err != nil {
			problems = append(problems, Problems(err)...)
		}
		if c.NeedsStateDir() && c.StateDir == "" {
			bad("state_dir: the keybroker keeps its keys in SQLite under state_dir; set it (or run serve --dev), or use store.driver postgres")
		}
	}
	return errors.Join(problems...)
}

// NeedsStateDir reports whether a configured capability keeps state in the SQLite
// file under state_dir.
func (c Config) NeedsStateDir() bool {
	usesStore := c.KeyBroker != nil
	sqliteRelative := (c.Store.Driver == "" || c.Store.Driver == store.SQLite) && !filepath.IsAbs(c.Store.Path)
	return usesStore && sqliteRelative
}

// ParseLevel turns a level name into a slog.Level.
func ParseLevel(name string) (slog.Level, error) {
	switch strings.ToLower(name) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not debug, info, warn or error", name)
}

// Problems splits an error returned by Load or Validate into its individual problems.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}
