package awscreds

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// credentialsDocument is the JSON document served by EC2 IMDS and the ECS container
// credentials endpoint.
type credentialsDocument struct {
	Code            string // IMDS: "Success" or an error code
	Message         string
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	Token           string
	Expiration      *time.Time
	RoleArn         string
}

// parseCredentialsDocument parses and validates an IMDS or ECS credentials document
// (untrusted: it comes over the network). Errors never quote the document.
func parseCredentialsDocument(data []byte, source string) (Credentials, error) {
	var doc credentialsDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return Credentials{}, fmt.Errorf("credentials document is not valid JSON: %w", jsonSyntaxOnly(err))
	}
	if doc.Code != "" && doc.Code != "Success" {
		return Credentials{}, fmt.Errorf("credentials document reports code %q: %s", truncate(doc.Code, 64), truncate(doc.Message, 256))
	}
	if doc.AccessKeyID == "" || doc.SecretAccessKey == "" {
		return Credentials{}, errors.New("credentials document lacks AccessKeyId or SecretAccessKey")
	}
	return documentCredentials(doc.AccessKeyID, doc.SecretAccessKey, doc.Token, doc.Expiration, source), nil
}

// documentCredentials makes Credentials from the fields every credentials document
// (IMDS, ECS, credential_process) carries; a nil expiration means they never expire.
func documentCredentials(id, secret, token string, expiration *time.Time, source string) Credentials {
	c := Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: token, Source: source}
	if expiration != nil {
		c.CanExpire, c.Expires = true, *expiration
	}
	return c
}

// jsonSyntaxOnly reduces a decoding error to its position and kind: the errors of
// encoding/json and time can quote the input, which may be a secret.
func jsonSyntaxOnly(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("syntax error at offset %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q has the wrong type", typ.Field)
	default:
		var perr *time.ParseError
		if errors.As(err, &perr) {
			return errors.New("a time is not in RFC 3339 format")
		}
		return errors.New("invalid value")
	}
}

// truncate bounds a server-supplied string before it goes into an error.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
