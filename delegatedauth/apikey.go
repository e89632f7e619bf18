package delegatedauth

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// An APIKey is a secret API key. It never prints itself: String, GoString, LogValue and
// MarshalText show at most a four-character prefix, enough to tell two keys apart in a
// log and too little to use. Reveal returns the key itself, for the one place that
// sends or stores it.
type APIKey struct {
	value string
}

// NewAPIKey wraps a raw key.
func NewAPIKey(raw string) APIKey { return APIKey{value: raw} }

// Reveal returns the raw key.
func (k APIKey) Reveal() string { return k.value }

// IsZero reports whether there is no key.
func (k APIKey) IsZero() bool { return k.value == "" }

// Equal reports whether k and o are the same key.
func (k APIKey) Equal(o APIKey) bool { return k.value == o.value }

// minPrefixedLen is the shortest key whose prefix is shown: a four-character prefix of
// a short key would give away too large a share of it.
const minPrefixedLen = 20

// String returns a redacted form of the key.
func (k APIKey) String() string {
	switch {
	case k.value == "":
		return "[none]"
	case len(k.value) < minPrefixedLen:
		return "[redacted]"
	default:
		return k.value[:4] + "…[redacted]"
	}
}

// GoString keeps %#v from printing the key.
func (k APIKey) GoString() string { return "delegatedauth.APIKey(" + k.String() + ")" }

// LogValue implements slog.LogValuer with the redacted form.
func (k APIKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalText keeps encoders (JSON, YAML, slog's text and JSON handlers) from writing
// the key. There is deliberately no UnmarshalText: a key is read with NewAPIKey.
func (k APIKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// A Key is an API key and what is known about it.
type Key struct {
	APIKey APIKey
	// Expires is when the broker said the key stops working; zero when it did not say
	// (Datadog's intake does not) or for a static key.
	Expires time.Time
	// Managed is true for a key obtained by delegated auth, false for the static
	// fallback key.
	Managed bool
}

// Expired reports whether the key has a known expiry at or before now.
func (k Key) Expired(now time.Time) bool {
	return !k.Expires.IsZero() && !now.Before(k.Expires)
}

// LogValue implements slog.LogValuer; the key itself is redacted.
func (k Key) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Any("api_key", k.APIKey), slog.Bool("managed", k.Managed)}
	if !k.Expires.IsZero() {
		attrs = append(attrs, slog.Time("expires", k.Expires))
	}
	return slog.GroupValue(attrs...)
}

// A KeySource returns an API key, shaped like oauth2.TokenSource. An Exchanger gets a
// fresh key at every call; a Refresher returns the key it keeps fresh.
type KeySource interface {
	Key(ctx context.Context) (Key, error)
}

// KeySourceFunc adapts a function to KeySource.
type KeySourceFunc func(ctx context.Context) (Key, error)

// Key calls f(ctx).
func (f KeySourceFunc) Key(ctx context.Context) (Key, error) { return f(ctx) }

// ErrNoKey is returned by Refresher.Key when it has no key to give: delegated auth has
// not succeeded (or its key expired) and there is no static fallback key.
var ErrNoKey = errors.New("delegatedauth: no API key available")
