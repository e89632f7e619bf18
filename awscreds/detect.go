package awscreds

import (
	"context"
	"os"
	"time"
)

const (
	// detectIMDSBudget bounds the whole IMDS probe of Detect; off AWS the address
	// 169.254.169.254 usually black-holes packets, so only a deadline ends the wait.
	detectIMDSBudget  = 800 * time.Millisecond
	detectIMDSTimeout = 400 * time.Millisecond
)

// Detect reports whether the process runs with an AWS identity and, if it does, the
// source it comes from (one of the Source constants). It does not fetch credentials
// except from IMDS, where the question can only be answered by asking: the probe is
// one try per request with short timeouts, so Detect returns in well under a second
// off AWS, whether the metadata address refuses connections or never answers.
//
// A configured source is reported even if fetching from it would fail: Detect is for
// choosing a mode at start, not for validating credentials.
func Detect(ctx context.Context) (string, bool) {
	if _, err := (Env{}).Retrieve(ctx); err == nil {
		return SourceEnv, true
	}
	if sharedConfigHasCredentials() {
		return SourceSharedConfig, true
	}
	if os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE") != "" && os.Getenv("AWS_ROLE_ARN") != "" {
		return SourceWebIdentity, true
	}
	if os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "" || os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI") != "" {
		return SourceContainer, true
	}
	if imdsDisabled() {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, detectIMDSBudget)
	defer cancel()
	m := &IMDS{Timeout: detectIMDSTimeout, MaxAttempts: 1}
	if _, err := m.RoleName(ctx); err == nil {
		return SourceIMDS, true
	}
	return "", false
}

func sharedConfigHasCredentials() bool {
	s := &SharedConfig{}
	files, err := s.load()
	if err != nil {
		return false
	}
	name, _ := s.profileName()
	p, ok := files.profiles[name]
	if !ok {
		return false
	}
	// The settings that give a profile an identity.
	for _, k := range []string{
		"aws_access_key_id", "role_arn", "credential_process", "credential_source",
		"web_identity_token_file", "sso_session", "sso_start_url",
	} {
		if p.get(k) != "" {
			return true
		}
	}
	return false
}
