package awscreds

import (
	"cmp"
	"context"
	"fmt"
	"os"
)

// Env is a Provider that reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN at every Retrieve, accepting the older AWS_ACCESS_KEY and
// AWS_SECRET_KEY aliases as the SDKs do.
type Env struct{}

// Retrieve reads the credentials from the environment. It returns an error wrapping
// ErrNotConfigured when neither key variable is set, and a plain error when only one
// half of the pair is.
func (Env) Retrieve(context.Context) (Credentials, error) {
	id := cmp.Or(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_ACCESS_KEY"))
	secret := cmp.Or(os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SECRET_KEY"))
	switch {
	case id == "" && secret == "":
		return Credentials{}, fmt.Errorf("environment: AWS_ACCESS_KEY_ID not set: %w", ErrNotConfigured)
	case id == "":
		return Credentials{}, fmt.Errorf("environment: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
	case secret == "":
		return Credentials{}, fmt.Errorf("environment: AWS_ACCESS_KEY_ID %q is set but AWS_SECRET_ACCESS_KEY is not", id)
	}
	return Credentials{
		AccessKeyID:     id,
		SecretAccessKey: secret,
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
		Source:          SourceEnv,
	}, nil
}
