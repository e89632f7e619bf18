package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"sync"
)

// DefaultSpoolThreshold is how much of a body that cannot be re-read is kept in memory
// while it is hashed before the rest goes to a temporary file.
const DefaultSpoolThreshold = 1 << 20

var digestPool = sync.Pool{New: func() any { return sha256.New() }}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// payloadHash resolves the payload hash of req; see Signer.Sign. For a presigned URL a
// body that cannot be re-read is an error rather than consumed: req belongs to the caller.
func (s *Signer) payloadHash(req *http.Request, p Params, presign bool) (string, error) {
	if p.PayloadHash != "" {
		return p.PayloadHash, nil
	}
	if v := req.Header[headerContentSHA256]; len(v) > 0 && v[0] != "" {
		return v[0], nil
	}
	if req.Body == nil || req.Body == http.NoBody {
		return EmptyPayloadHash, nil
	}
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return "", fmt.Errorf("sigv4: re-reading the request body to hash it: %w", err)
		}
		sum, n, err := hashReader(req.Context(), body)
		body.Close()
		if err != nil {
			return "", fmt.Errorf("sigv4: hashing the request body: %w", err)
		}
		if req.ContentLength > 0 && n != req.ContentLength {
			return "", fmt.Errorf("sigv4: request body is %d bytes, ContentLength says %d", n, req.ContentLength)
		}
		return hex.EncodeToString(sum[:]), nil
	}
	if presign {
		return "", errors.New("sigv4: presign: the request body cannot be re-read; set Params.PayloadHash")
	}
	threshold := s.SpoolThreshold
	if threshold <= 0 {
		threshold = DefaultSpoolThreshold
	}
	sp, sum, err := newSpool(req.Context(), req.Body, threshold, s.SpoolDir)
	req.Body.Close()
	if err != nil {
		return "", err
	}
	if req.ContentLength > 0 && sp.size != req.ContentLength {
		sp.release()
		return "", fmt.Errorf("sigv4: request body is %d bytes, ContentLength says %d", sp.size, req.ContentLength)
	}
	req.ContentLength = sp.size
	req.TransferEncoding = nil // the length is known now, and signed: send it
	if sp.size == 0 {
		sp.release()
		req.Body, req.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
		return EmptyPayloadHash, nil
	}
	req.Body, _ = sp.open()
	sp.release() // the body now holds the only reference
	req.GetBody = sp.open
	return hex.EncodeToString(sum[:]), nil
}

// hashReader streams r through SHA-256. In-memory readers (io.WriterTo) are hashed in
// one call; others in 32 KiB reads, checking ctx between them.
func hashReader(ctx context.Context, r io.Reader) (sum [sha256.Size]byte, n int64, err error) {
	h := digestPool.Get().(hash.Hash)
	defer digestPool.Put(h)
	h.Reset()
	if wt, ok := r.(io.WriterTo); ok {
		n, err = wt.WriteTo(h)
	} else {
		n, err = copyCtx(ctx, h, r)
	}
	if err != nil {
		return sum, n, err
	}
	h.Sum(sum[:0])
	return sum, n, nil
}

func copyCtx(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := r.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// spool is a body read once and kept so it can be sent (and re-sent): in memory up to a
// threshold, past it in an unlinked temporary file. The file is closed, and its space
// freed, when the last reader handed out by open is closed; GetBody fails after that.
type spool struct {
	mem  []byte
	file *os.File
	size int64

	mu   sync.Mutex
	refs int // readers open, plus one for the creator until it calls release
	done bool
}

// newSpool reads r to the end, hashing it, and returns the spool with one reference.
func newSpool(ctx context.Context, r io.Reader, threshold int64, dir string) (*spool, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	sp := &spool{refs: 1}
	h := digestPool.Get().(hash.Hash)
	defer digestPool.Put(h)
	h.Reset()
	w := &spoolWriter{sp: sp, threshold: threshold, dir: dir}
	n, err := copyCtx(ctx, io.MultiWriter(h, w), r)
	if err == nil {
		err = w.err
	}
	if err != nil {
		sp.release()
		return nil, sum, fmt.Errorf("sigv4: spooling the request body to hash it (after %d bytes): %w", n, err)
	}
	sp.size = n
	h.Sum(sum[:0])
	return sp, sum, nil
}

type spoolWriter struct {
	sp        *spool
	threshold int64
	dir       string
	err       error
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	sp := w.sp
	if sp.file == nil && int64(len(sp.mem)+len(p)) <= w.threshold {
		sp.mem = append(sp.mem, p...)
		return len(p), nil
	}
	if sp.file == nil {
		f, err := os.CreateTemp(w.dir, "chancery-sigv4-body-*")
		if err != nil {
			w.err = err
			return 0, err
		}
		// Unlinked at once: the data lives while the descriptor does, and a crash
		// leaves nothing behind.
		os.Remove(f.Name())
		sp.file = f
		if _, err := f.Write(sp.mem); err != nil {
			w.err = err
			return 0, err
		}
		sp.mem = nil
	}
	n, err := sp.file.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

var errSpoolReleased = errors.New("sigv4: spooled request body already released")

// open returns a new reader from the start of the spooled body.
func (sp *spool) open() (io.ReadCloser, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.file == nil {
		// In memory there is nothing to release: always re-readable.
		return &spoolBody{r: bytes.NewReader(sp.mem), sp: sp}, nil
	}
	if sp.done {
		return nil, errSpoolReleased
	}
	sp.refs++
	return &spoolBody{r: io.NewSectionReader(sp.file, 0, sp.size), sp: sp}, nil
}

func (sp *spool) release() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.refs--
	if sp.refs > 0 || sp.done {
		return
	}
	sp.done = true
	if sp.file != nil {
		sp.file.Close()
	}
}

type spoolBody struct {
	r    io.Reader
	sp   *spool
	once sync.Once
}

func (b *spoolBody) Read(p []byte) (int, error) { return b.r.Read(p) }

// WriteTo lets io.Copy hand the in-memory case over in one write.
func (b *spoolBody) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, b.r) }

func (b *spoolBody) Close() error {
	b.once.Do(b.sp.release)
	return nil
}

// holdBody takes an extra reference on a spooled body so that GetBody keeps working
// after the transport closes the body it sent; the returned func drops it. For other
// bodies it does nothing.
func holdBody(body io.ReadCloser) func() {
	sb, ok := body.(*spoolBody)
	if !ok {
		return func() {}
	}
	sb.sp.mu.Lock()
	if sb.sp.done {
		sb.sp.mu.Unlock()
		return func() {}
	}
	sb.sp.refs++
	sb.sp.mu.Unlock()
	var once sync.Once
	return func() { once.Do(sb.sp.release) }
}
