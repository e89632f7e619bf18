package awscreds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxConfigFileSize bounds how much of a shared config or credentials file is read.
const maxConfigFileSize = 4 << 20

// SharedConfig is a Provider that resolves a profile of the shared AWS config and
// credentials files, as the SDKs do: static keys, role_arn with source_profile (chains
// of them, with cycle detection) or credential_source, credential_process and
// web_identity_token_file.
//
// The files are read at every Retrieve, so edits are picked up at the next refresh; wrap
// the provider in a Cache.
type SharedConfig struct {
	// CredentialsFile defaults to $AWS_SHARED_CREDENTIALS_FILE, then ~/.aws/credentials.
	CredentialsFile string
	// ConfigFile defaults to $AWS_CONFIG_FILE, then ~/.aws/config.
	ConfigFile string
	// Profile defaults to $AWS_PROFILE, then "default".
	Profile string

	// STS is the client template for role_arn profiles; its Region, when empty, comes
	// from $AWS_REGION, $AWS_DEFAULT_REGION or the profile's region. Nil means a
	// default client.
	STS *STSClient
	// HTTPClient is used for credential_source = Ec2InstanceMetadata or EcsContainer;
	// nil means IMDS's and Container's own default.
	HTTPClient *http.Client
	// ProcessTimeout bounds a credential_process run; zero means one minute.
	ProcessTimeout time.Duration
}

// profile is one merged profile of the config and credentials files.
type profile struct {
	name     string
	settings map[string]string
}

func (p profile) get(key string) string { return p.settings[key] }

func (p profile) hasKeys() bool {
	return p.get("aws_access_key_id") != "" && p.get("aws_secret_access_key") != ""
}

// sharedFiles is the result of loading both files once for one Retrieve.
type sharedFiles struct {
	profiles        map[string]profile
	credentialsPath string
	configPath      string
}

// Retrieve resolves the profile. It returns an error wrapping ErrNotConfigured when
// neither file exists, or when the default profile was chosen implicitly and holds no
// credential settings.
func (s *SharedConfig) Retrieve(ctx context.Context) (Credentials, error) {
	files, err := s.load()
	if err != nil {
		return Credentials{}, err
	}
	name, explicit := s.profileName()
	p, ok := files.profiles[name]
	if !ok {
		if !explicit {
			return Credentials{}, fmt.Errorf("shared config: no profile %q in %s or %s: %w", name, files.credentialsPath, files.configPath, ErrNotConfigured)
		}
		return Credentials{}, fmt.Errorf("shared config: profile %q not found in %s or %s", name, files.credentialsPath, files.configPath)
	}
	r := resolver{cfg: s, files: files, region: cmp.Or(os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"), p.get("region"))}
	creds, err := r.resolve(ctx, p, nil)
	if err != nil {
		if !explicit && errors.Is(err, errNoCredentialSettings) {
			err = fmt.Errorf("%w: %w", err, ErrNotConfigured)
		}
		return Credentials{}, fmt.Errorf("shared config: %w", err)
	}
	return creds, nil
}

func (s *SharedConfig) profileName() (name string, explicit bool) {
	if s.Profile != "" {
		return s.Profile, true
	}
	if p := os.Getenv("AWS_PROFILE"); p != "" {
		return p, true
	}
	return "default", false
}

func (s *SharedConfig) paths() (credentials, config string) {
	home, _ := os.UserHomeDir()
	def := func(name string) string {
		if home == "" {
			return ""
		}
		return filepath.Join(home, ".aws", name)
	}
	return cmp.Or(s.CredentialsFile, os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), def("credentials")),
		cmp.Or(s.ConfigFile, os.Getenv("AWS_CONFIG_FILE"), def("config"))
}

// load reads and merges both files. A profile's settings in the credentials file win
// over the same settings in the config file, as in the SDKs.
func (s *SharedConfig) load() (sharedFiles, error) {
	credPath, confPath := s.paths()
	files := sharedFiles{profiles: map[string]profile{}, credentialsPath: credPath, configPath: confPath}
	found := false
	for _, f := range []struct {
		path     string
		isConfig bool
	}{{confPath, true}, {credPath, false}} {
		sections, ok, err := readINIFile(f.path)
		if err != nil {
			return files, fmt.Errorf("shared config: %w", err)
		}
		found = found || ok
		for section, kv := range sections {
			name, ok := profileSectionName(section, f.isConfig)
			if !ok {
				continue
			}
			p, exists := files.profiles[name]
			if !exists {
				p = profile{name: name, settings: map[string]string{}}
				files.profiles[name] = p
			}
			for k, v := range kv {
				p.settings[k] = v
			}
		}
	}
	if !found {
		return files, fmt.Errorf("shared config: neither %s nor %s exists: %w", credPath, confPath, ErrNotConfigured)
	}
	return files, nil
}

// profileSectionName maps a section header to a profile name: "[profile x]" or
// "[default]" in the config file, "[x]" in the credentials file. Other config sections
// (sso-session, services) are not profiles.
func profileSectionName(section string, isConfig bool) (string, bool) {
	if !isConfig {
		return section, true
	}
	if section == "default" {
		return section, true
	}
	if name, ok := strings.CutPrefix(section, "profile "); ok && name != "" {
		return name, true
	}
	return "", false
}

// readINIFile reads and parses one file; a missing file is not an error.
func readINIFile(path string) (iniSections, bool, error) {
	if path == "" {
		return nil, false, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileSize+1))
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxConfigFileSize {
		return nil, false, fmt.Errorf("reading %s: larger than %d bytes", path, maxConfigFileSize)
	}
	sections, err := parseINI(data)
	if err != nil {
		return nil, false, fmt.Errorf("parsing %s: %w", path, err)
	}
	return sections, true, nil
}

var errNoCredentialSettings = errors.New("profile has no credential settings")

// resolver resolves one profile, following source_profile links.
type resolver struct {
	cfg    *SharedConfig
	files  sharedFiles
	region string
}

// resolve returns the credentials of p. chain lists the profiles already visited on
// the way to p, to detect cycles.
func (r *resolver) resolve(ctx context.Context, p profile, chain []string) (Credentials, error) {
	for _, seen := range chain {
		if seen == p.name {
			return Credentials{}, fmt.Errorf("source_profile cycle: %s -> %s", strings.Join(chain, " -> "), p.name)
		}
	}
	chain = append(chain, p.name)

	duration, err := parseDurationSeconds(p)
	if err != nil {
		return Credentials{}, err
	}
	roleARN := p.get("role_arn")
	source := p.get("source_profile")
	var base Provider
	switch {
	case roleARN != "" && source != "" && !(source == p.name && p.hasKeys()):
		sp, ok := r.files.profiles[source]
		if !ok {
			return Credentials{}, fmt.Errorf("profile %q: source_profile %q not found", p.name, source)
		}
		creds, err := r.resolve(ctx, sp, chain)
		if err != nil {
			return Credentials{}, fmt.Errorf("profile %q: %w", p.name, err)
		}
		base = Static(creds)
	case p.hasKeys():
		base = Static(Credentials{
			AccessKeyID:     p.get("aws_access_key_id"),
			SecretAccessKey: p.get("aws_secret_access_key"),
			SessionToken:    p.get("aws_session_token"),
			Source:          SourceSharedConfig,
		})
	case p.get("credential_process") != "":
		base = &Process{Command: p.get("credential_process"), Timeout: r.cfg.ProcessTimeout}
	case p.get("credential_source") != "":
		var err error
		if base, err = r.credentialSource(p); err != nil {
			return Credentials{}, err
		}
	case p.get("web_identity_token_file") != "":
		if roleARN == "" {
			return Credentials{}, fmt.Errorf("profile %q: web_identity_token_file without role_arn", p.name)
		}
		return (&WebIdentity{
			STS:             r.sts(),
			RoleARN:         roleARN,
			RoleSessionName: p.get("role_session_name"),
			TokenFile:       p.get("web_identity_token_file"),
			Duration:        duration,
		}).Retrieve(ctx)
	case p.get("sso_session") != "" || p.get("sso_start_url") != "":
		return Credentials{}, fmt.Errorf("profile %q: SSO profiles are not supported", p.name)
	case roleARN != "":
		return Credentials{}, fmt.Errorf("profile %q: role_arn needs source_profile, credential_source or web_identity_token_file", p.name)
	default:
		return Credentials{}, fmt.Errorf("profile %q: %w", p.name, errNoCredentialSettings)
	}
	if roleARN == "" {
		return base.Retrieve(ctx)
	}
	if p.get("mfa_serial") != "" {
		return Credentials{}, fmt.Errorf("profile %q: mfa_serial is not supported (no token prompt in a daemon)", p.name)
	}
	return (&AssumeRole{
		STS:             r.sts(),
		Source:          base,
		RoleARN:         roleARN,
		RoleSessionName: p.get("role_session_name"),
		ExternalID:      p.get("external_id"),
		Duration:        duration,
	}).Retrieve(ctx)
}

func (r *resolver) credentialSource(p profile) (Provider, error) {
	switch src := p.get("credential_source"); src {
	case "Environment":
		return Env{}, nil
	case "Ec2InstanceMetadata":
		return &IMDS{HTTPClient: r.cfg.HTTPClient}, nil
	case "EcsContainer":
		return &Container{HTTPClient: r.cfg.HTTPClient}, nil
	default:
		return nil, fmt.Errorf("profile %q: unknown credential_source %q", p.name, src)
	}
}

func (r *resolver) sts() *STSClient {
	var c STSClient
	if r.cfg.STS != nil {
		c = r.cfg.STS.clone()
	}
	if c.Region == "" {
		c.Region = r.region
	}
	return &c
}

func parseDurationSeconds(p profile) (time.Duration, error) {
	v := p.get("duration_seconds")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 900 || n > 43200 {
		return 0, fmt.Errorf("profile %q: duration_seconds %q is not a whole number from 900 to 43200", p.name, v)
	}
	return time.Duration(n) * time.Second, nil
}
