package delegatedauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestAPIKeyRedacts(t *testing.T) {
	long := NewAPIKey("chk_" + strings.Repeat("s3cr3t", 5))
	short := NewAPIKey("tiny-s3cr3t")
	k := Key{APIKey: long, Managed: true, Expires: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "key", long, "full", k, "short", short)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "key", long, "full", k, "short", short)
	js, _ := json.Marshal(struct {
		K APIKey
		F Key
	}{long, k})

	outputs := map[string]string{
		"%v":    fmt.Sprintf("%v", long),
		"%s":    fmt.Sprintf("%s", long),
		"%q":    fmt.Sprintf("%q", long),
		"%x":    fmt.Sprintf("%x", long),
		"%#v":   fmt.Sprintf("%#v", long),
		"%+v":   fmt.Sprintf("%+v", k),
		"%#vk":  fmt.Sprintf("%#v", k),
		"short": fmt.Sprintf("%v %#v", short, short),
		"slog":  logs.String(),
		"json":  string(js),
	}
	for name, out := range outputs {
		if strings.Contains(out, "s3cr3t") {
			t.Errorf("%s leaks the key: %s", name, out)
		}
	}
	if got := long.String(); got != "chk_…[redacted]" {
		t.Errorf("String = %q, want a 4-character prefix", got)
	}
	if got := short.String(); got != "[redacted]" {
		t.Errorf("short key String = %q, want no prefix", got)
	}
	if got := (APIKey{}).String(); got != "[none]" {
		t.Errorf("zero String = %q", got)
	}
	if long.Reveal() != "chk_"+strings.Repeat("s3cr3t", 5) {
		t.Error("Reveal does not return the key")
	}
}
