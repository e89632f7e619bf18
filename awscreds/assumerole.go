package awscreds

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"time"
)

// AssumeRole is a Provider that assumes an IAM role with STS AssumeRole, signing the
// call with the credentials of Source.
type AssumeRole struct {
	STS             *STSClient // nil means a zero STSClient (global endpoint)
	Source          Provider
	RoleARN         string
	RoleSessionName string // empty means "chancery-" and the current Unix time in ns
	ExternalID      string
	Duration        time.Duration // zero means STS's default, one hour
	Policy          string
}

// Retrieve gets the source credentials and assumes the role with them.
func (a *AssumeRole) Retrieve(ctx context.Context) (Credentials, error) {
	if a.RoleARN == "" || a.Source == nil {
		return Credentials{}, fmt.Errorf("assume role: RoleARN and Source are required: %w", ErrNotConfigured)
	}
	src, err := a.Source.Retrieve(ctx)
	if err != nil {
		return Credentials{}, fmt.Errorf("assume role %s: source credentials: %w", a.RoleARN, err)
	}
	out, err := stsOrZero(a.STS).AssumeRole(ctx, src, AssumeRoleInput{
		RoleARN:         a.RoleARN,
		RoleSessionName: cmp.Or(a.RoleSessionName, defaultSessionName()),
		ExternalID:      a.ExternalID,
		Duration:        a.Duration,
		Policy:          a.Policy,
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("assume role: %w", err)
	}
	return out.Credentials, nil
}

func stsOrZero(c *STSClient) *STSClient {
	if c == nil {
		return &STSClient{}
	}
	return c
}

// defaultSessionName is unique per call, as the SDKs' default is.
func defaultSessionName() string {
	return "chancery-" + strconv.FormatInt(time.Now().UnixNano(), 10)
}
