package delegatedauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api_key")
	// An existing, world-readable file is replaced by a private one.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{testKey, "chk_second_key_0123456789abcdef"} {
		if err := WriteKeyFile(path, NewAPIKey(key)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != key {
			t.Fatalf("file holds %q, %v; want %q", got, err, key)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode = %v, %v; want 0600", fi.Mode(), err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestWriteKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path string
		key        APIKey
		want       string
	}{
		{"no key", filepath.Join(dir, "k"), APIKey{}, "no key"},
		{"missing dir", filepath.Join(dir, "nope", "k"), NewAPIKey(testKey), "no such file or directory"},
		{"target is a directory", dir, NewAPIKey(testKey), "write key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteKeyFile(tt.path, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), testKey) {
				t.Fatalf("err = %v, want %q without the key", err, tt.want)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}
