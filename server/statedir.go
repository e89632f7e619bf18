package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// PrepareStateDir makes sure dir exists as a directory only its owner can use, and that
// this process can write to it. A missing directory is created with mode 0700; an
// existing one that others can read or write is refused rather than silently fixed:
// it may already have leaked what it holds.
func PrepareStateDir(dir string) error {
	if dir == "" {
		return errors.New("state directory: no path given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory %s: %w", dir, pathErrCause(err))
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, pathErrCause(err))
	}
	if !info.IsDir() {
		return fmt.Errorf("state directory %s: not a directory", dir)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("state directory %s: mode %#o lets other users in; run: chmod 700 %s", dir, perm, dir)
	}
	probe, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("state directory %s: not writable: %w", dir, pathErrCause(err))
	}
	name := probe.Name()
	probe.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("state directory %s: remove %s: %w", dir, filepath.Base(name), pathErrCause(err))
	}
	return nil
}

// pathErrCause drops *fs.PathError's repetition of the path, which the caller names.
func pathErrCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
