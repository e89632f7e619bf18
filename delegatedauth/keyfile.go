package delegatedauth

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteKeyFile writes the raw key to path, readable by its owner only (mode 0600),
// atomically: the key goes to a temporary file in the same directory, which is synced
// and then renamed over path, so a reader sees the old key or the new one, never a
// partial write. The file holds the key alone, without a trailing newline.
func WriteKeyFile(path string, k APIKey) (err error) {
	if k.IsZero() {
		return fmt.Errorf("delegatedauth: write key file %s: no key", path)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// CreateTemp makes the file 0600 from the start: the key is never readable by others,
	// not even briefly.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("delegatedauth: write key file %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil { // in case of an unusual umask or filesystem
		f.Close()
		return fmt.Errorf("delegatedauth: write key file %s: %w", path, err)
	}
	if _, err := f.WriteString(k.Reveal()); err != nil {
		f.Close()
		return fmt.Errorf("delegatedauth: write key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("delegatedauth: write key file %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("delegatedauth: write key file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("delegatedauth: write key file %s: %w", path, err)
	}
	// Make the rename itself durable; a directory that cannot be synced is not an error.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
