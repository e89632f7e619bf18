package awscreds

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// maxWebIdentityTokenSize bounds the token file read; real tokens are a few KiB.
const maxWebIdentityTokenSize = 64 << 10

// WebIdentity is a Provider that exchanges an OIDC token read from a file for role
// credentials with STS AssumeRoleWithWebIdentity, as on EKS with IAM roles for service
// accounts. The token file is read again at every Retrieve, because the kubelet
// rotates it.
//
// Use WebIdentityFromEnv for the AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN /
// AWS_ROLE_SESSION_NAME environment of IRSA.
type WebIdentity struct {
	STS             *STSClient // nil means a zero STSClient (global endpoint)
	RoleARN         string
	RoleSessionName string // empty means "chancery-" and the current Unix time in ns
	TokenFile       string
	Duration        time.Duration
	Policy          string
}

// WebIdentityFromEnv returns a WebIdentity configured from the environment, with the
// region of its STS client taken from AWS_REGION or AWS_DEFAULT_REGION when sts does
// not set one. Its Retrieve reports ErrNotConfigured when the variables are not set.
func WebIdentityFromEnv(sts *STSClient) *WebIdentity {
	var c STSClient
	if sts != nil {
		c = sts.clone()
	}
	c.Region = cmp.Or(c.Region, os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
	return &WebIdentity{
		STS:             &c,
		RoleARN:         os.Getenv("AWS_ROLE_ARN"),
		RoleSessionName: os.Getenv("AWS_ROLE_SESSION_NAME"),
		TokenFile:       os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE"),
	}
}

// Retrieve reads the token and assumes the role with it.
func (w *WebIdentity) Retrieve(ctx context.Context) (Credentials, error) {
	switch {
	case w.TokenFile == "" && w.RoleARN == "":
		return Credentials{}, fmt.Errorf("web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set: %w", ErrNotConfigured)
	case w.TokenFile == "":
		return Credentials{}, fmt.Errorf("web identity: role %s has no token file", w.RoleARN)
	case w.RoleARN == "":
		return Credentials{}, fmt.Errorf("web identity: token file %s has no role ARN (AWS_ROLE_ARN)", w.TokenFile)
	}
	token, err := readTokenFile(w.TokenFile, maxWebIdentityTokenSize)
	if err != nil {
		return Credentials{}, fmt.Errorf("web identity: %w", err)
	}
	out, err := stsOrZero(w.STS).AssumeRoleWithWebIdentity(ctx, AssumeRoleWithWebIdentityInput{
		RoleARN:          w.RoleARN,
		RoleSessionName:  cmp.Or(w.RoleSessionName, defaultSessionName()),
		WebIdentityToken: token,
		Duration:         w.Duration,
		Policy:           w.Policy,
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("web identity: %w", err)
	}
	return out.Credentials, nil
}

// readTokenFile reads a small secret file, trimmed of surrounding whitespace.
func readTokenFile(path string, limit int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening token file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", fmt.Errorf("reading token file %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return "", fmt.Errorf("token file %s is larger than %d bytes", path, limit)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return string(data), nil
}
