package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"runtime"
	"testing"
)

// patternReader yields n bytes of a repeating pattern, cheaply and without holding them.
type patternReader struct {
	n, off int64
}

var pattern = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	n := int64(len(p))
	n = min(n, r.n-r.off)
	var done int64
	for done < n {
		c := copy(p[done:n], pattern[(r.off+done)%int64(len(pattern)):])
		done += int64(c)
	}
	r.off += n
	return int(n), nil
}

func patternSum(n int64) string {
	h := sha256.New()
	io.Copy(h, &patternReader{n: n})
	return hex.EncodeToString(h.Sum(nil))
}

func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestSignStreamsLargeBodies: hashing a body allocates a fixed amount, whatever its
// size: 1 GiB through GetBody, and 64 MiB that cannot be re-read (spooled to a file).
func TestSignStreamsLargeBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 1 GiB")
	}
	// A few times the 1 MiB spool threshold (the in-memory part grows by doubling),
	// far below either body.
	const limit = 8 << 20
	tests := []struct {
		name      string
		size      int64
		rereadble bool
	}{
		{"1GiB re-readable", 1 << 30, true},
		{"64MiB read once", 64 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Signer{ContentSHA256Header: true, SpoolThreshold: 1 << 20, SpoolDir: t.TempDir()}
			req, _ := http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/b/k", io.NopCloser(&patternReader{n: tt.size}))
			req.ContentLength = tt.size
			if tt.rereadble {
				req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(&patternReader{n: tt.size}), nil }
			}
			var err error
			alloc := allocatedDuring(func() { err = s.Sign(req, testCreds, testParams()) })
			if err != nil {
				t.Fatal(err)
			}
			if alloc > limit {
				t.Errorf("signing a %d-byte body allocated %d bytes", tt.size, alloc)
			}
			if got, want := req.Header.Get("X-Amz-Content-Sha256"), patternSum(tt.size); got != want {
				t.Errorf("payload hash %s, want %s", got, want)
			}
			if !tt.rereadble {
				h := sha256.New()
				if _, err := io.Copy(h, req.Body); err != nil {
					t.Fatal(err)
				}
				req.Body.Close()
				if got := hex.EncodeToString(h.Sum(nil)); got != patternSum(tt.size) {
					t.Error("spooled body differs from the original")
				}
			}
		})
	}
}
