package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// DefaultChunkSize is the chunk size of SignStreaming when none is given: the size AWS
// recommends (at least 64 KiB; every chunk but the last must be at least 8 KiB).
const DefaultChunkSize = 64 << 10

const minChunkSize = 8 << 10

// SignStreaming signs req for a chunk-signed upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD,
// S3): the headers are signed now, and req.Body is replaced by a reader that encodes it
// as aws-chunked frames as it is sent, each frame signed with the previous signature.
// The body is read once, a chunk at a time, never held whole and never spooled.
//
// req.ContentLength must be known (S3 needs the decoded length up front); it becomes
// the encoded length. If req.GetBody is set, it is wrapped so the request can be re-sent.
// chunkSize zero means DefaultChunkSize.
func (s *Signer) SignStreaming(req *http.Request, creds Credentials, p Params, chunkSize int) error {
	if err := validate(creds, p); err != nil {
		return err
	}
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if chunkSize < minChunkSize {
		return fmt.Errorf("sigv4: chunk size %d is below the %d bytes S3 requires", chunkSize, minChunkSize)
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody && req.ContentLength <= 0 {
		return errors.New("sigv4: a chunk-signed upload needs the body length (Request.ContentLength)")
	}
	decoded := max(req.ContentLength, 0)
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	if ce := req.Header.Get("Content-Encoding"); ce == "" {
		req.Header.Set("Content-Encoding", "aws-chunked")
	} else if !strings.HasPrefix(ce, "aws-chunked") {
		req.Header.Set("Content-Encoding", "aws-chunked,"+ce)
	}
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(decoded, 10))
	req.ContentLength = chunkedLength(decoded, int64(chunkSize))
	req.TransferEncoding = nil // S3 wants the encoded length, which is signed
	t := s.signingTime(p)
	if _, err := s.sign(req, creds, p, StreamingPayload, t, false, true); err != nil {
		return err
	}
	auth := req.Header.Get(headerAuthorization)
	seed := auth[len(auth)-2*sha256.Size:]

	var amzDate [amzDateLen]byte
	appendAmzDate(amzDate[:0], t)
	key := s.keys.get(creds.SecretAccessKey, amzDate[:8], p.Region, p.Service)
	prefix := make([]byte, 0, 128)
	prefix = append(prefix, "AWS4-HMAC-SHA256-PAYLOAD\n"...)
	prefix = append(prefix, amzDate[:]...)
	prefix = append(prefix, '\n')
	prefix = appendScope(prefix, amzDate[:8], p.Region, p.Service)
	prefix = append(prefix, '\n')

	newReader := func(body io.ReadCloser) io.ReadCloser {
		c := &chunkedBody{src: body, key: key, prefix: prefix, remaining: decoded, chunk: make([]byte, chunkSize)}
		copy(c.prev[:], seed)
		return c
	}
	var src io.ReadCloser = http.NoBody
	if hasBody {
		src = req.Body
	}
	req.Body = newReader(src)
	if get := req.GetBody; get != nil && hasBody {
		req.GetBody = func() (io.ReadCloser, error) {
			b, err := get()
			if err != nil {
				return nil, err
			}
			return newReader(b), nil
		}
	} else if !hasBody {
		req.GetBody = func() (io.ReadCloser, error) { return newReader(http.NoBody), nil }
	} else {
		req.GetBody = nil
	}
	return nil
}

// chunkedLength is the aws-chunked encoded length of n bytes in chunks of size c.
func chunkedLength(n, c int64) int64 {
	frame := func(size int64) int64 {
		return int64(len(strconv.FormatInt(size, 16))) + int64(len(";chunk-signature=")) + 2*sha256.Size + 2 + size + 2
	}
	total := (n / c) * frame(c)
	if r := n % c; r > 0 {
		total += frame(r)
	}
	return total + frame(0)
}

// chunkedBody encodes src as signed aws-chunked frames.
type chunkedBody struct {
	src       io.ReadCloser
	key       *signingKey
	prefix    []byte // "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n"
	prev      [2 * sha256.Size]byte
	remaining int64
	chunk     []byte
	out       []byte // encoded bytes not yet returned
	sts       []byte
	hbuf      []byte
	done      bool
}

func (c *chunkedBody) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.done {
			return 0, io.EOF
		}
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// next reads the next chunk of src and encodes its frame; after the data, the final
// empty frame.
func (c *chunkedBody) next() error {
	size := int(min(int64(len(c.chunk)), c.remaining))
	data := c.chunk[:size]
	if size > 0 {
		if _, err := io.ReadFull(c.src, data); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("sigv4: reading chunk of upload body (%d bytes left): %w", c.remaining, err)
		}
		c.remaining -= int64(size)
	} else {
		// The declared length is all that is sent; more would corrupt the upload.
		var one [1]byte
		if n, _ := io.ReadFull(c.src, one[:]); n > 0 {
			return errors.New("sigv4: upload body is longer than its ContentLength")
		}
		c.done = true
	}
	sum := sha256.Sum256(data)
	c.sts = append(append(c.sts[:0], c.prefix...), c.prev[:]...)
	c.sts = append(c.sts, "\n"+EmptyPayloadHash+"\n"...)
	c.sts = hex.AppendEncode(c.sts, sum[:])
	var sig [sha256.Size]byte
	sig, c.hbuf = c.key.mac(c.sts, c.hbuf)
	hex.Encode(c.prev[:], sig[:])

	out := c.out[:0]
	if cap(out) < size+128 {
		out = make([]byte, 0, len(c.chunk)+128)
	}
	out = strconv.AppendInt(out, int64(size), 16)
	out = append(out, ";chunk-signature="...)
	out = append(out, c.prev[:]...)
	out = append(out, "\r\n"...)
	out = append(out, data...)
	out = append(out, "\r\n"...)
	c.out = out
	return nil
}

func (c *chunkedBody) Close() error { return c.src.Close() }
