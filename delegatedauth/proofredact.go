package delegatedauth

import (
	"fmt"
	"log/slog"
	"strings"
)

// A proof is a bearer credential while its signature is fresh: whoever holds it can
// present it. These methods keep fmt and slog from printing the signature or the
// session token; they show what is needed to tell proofs apart.

// String describes the proof without its signature or session token.
func (p Proof) String() string {
	return fmt.Sprintf("Proof{%s %q, credential %q, org %q, server %q, signature [redacted]}",
		p.Method, p.URL, p.credential(), p.Header.Get(OrgIDHeader), p.Header.Get(ServerIDHeader))
}

// GoString keeps %#v from printing the signature.
func (p Proof) GoString() string { return p.String() }

// LogValue implements slog.LogValuer without the signature or session token.
func (p Proof) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("method", p.Method),
		slog.String("url", p.URL),
		slog.String("credential", p.credential()),
		slog.String("org", p.Header.Get(OrgIDHeader)),
		slog.String("server", p.Header.Get(ServerIDHeader)),
	)
}

// credential returns the Credential= part of the SigV4 Authorization header: the
// access key id and the scope (date, region, service), none of it secret.
func (p Proof) credential() string {
	_, rest, ok := strings.Cut(p.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ := strings.Cut(rest, ",")
	return shorten(strings.TrimSpace(cred), 128)
}
