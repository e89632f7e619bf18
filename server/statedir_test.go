package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chancery/chancery/server"
)

func TestPrepareStateDir(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(base, "loose")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(base, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	// Mkdir is subject to the umask; set the modes the cases need exactly.
	for dir, mode := range map[string]os.FileMode{loose: 0o755, private: 0o700} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name, dir, wantErr string
	}{
		{"created", filepath.Join(base, "new", "state"), ""},
		{"existing private", private, ""},
		{"empty path", "", "no path given"},
		{"is a file", file, "not a directory"},
		{"under a file", filepath.Join(file, "state"), "not a directory"},
		{"readable by others", loose, "mode 0755 lets other users in; run: chmod 700 " + loose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := server.PrepareStateDir(tt.dir)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				info, err := os.Stat(tt.dir)
				if err != nil || info.Mode().Perm() != 0o700 {
					t.Fatalf("state dir mode = %v (%v), want 0700", info.Mode().Perm(), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tt.wantErr)
			}
		})
	}
}
