package sigv4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/chancery/chancery/sigv4"
)

// Run both signers in one go: go test -run '^$' -bench . -benchtime 20000x ./sigv4

var benchCreds = sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "FwoGZXIvYXdzEBYaDH"}

var benchTime = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// typicalGET is an S3 GetObject as an SDK sends it.
func typicalGET() *http.Request {
	req, _ := http.NewRequest(http.MethodGet, "https://examplebucket.s3.eu-west-1.amazonaws.com/photos/2026/cat.jpg?versionId=3HL4kqtJlcpXroDTDmJ%2Brmj&x-id=GetObject", nil)
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.47.8 os/linux lang/go#1.26 md/GOOS#linux api/s3#1.114.8")
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("Amz-Sdk-Invocation-Id", "0f6e4b2c-7c8d-4e1a-9b5c-2d3e4f5a6b7c")
	req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	req.Header.Set("X-Amz-Content-Sha256", sigv4.EmptyPayloadHash)
	return req
}

// resetGET undoes what signing added so each iteration signs the same request.
func resetGET(req *http.Request, rawQuery string) {
	req.URL.RawQuery = rawQuery
	delete(req.Header, "Authorization")
	delete(req.Header, "X-Amz-Date")
	delete(req.Header, "X-Amz-Security-Token")
}

func BenchmarkSignGET(b *testing.B) {
	b.Run("chancery", func(b *testing.B) {
		s := &sigv4.Signer{DisableURIPathEscaping: true}
		p := sigv4.Params{Service: "s3", Region: "eu-west-1", Time: benchTime, PayloadHash: sigv4.EmptyPayloadHash}
		req := typicalGET()
		q := req.URL.RawQuery
		b.ReportAllocs()
		for b.Loop() {
			resetGET(req, q)
			if err := s.Sign(req, benchCreds, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("aws-sdk-go-v2", func(b *testing.B) {
		s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		creds := aws.Credentials{AccessKeyID: benchCreds.AccessKeyID, SecretAccessKey: benchCreds.SecretAccessKey, SessionToken: benchCreds.SessionToken}
		req := typicalGET()
		q := req.URL.RawQuery
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			resetGET(req, q)
			if err := s.SignHTTP(ctx, creds, req, sigv4.EmptyPayloadHash, "s3", "eu-west-1", benchTime); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHashPayload1MiB signs a PUT of 1 MiB, hashing the body: our signer, the path an
// aws-sdk-go-v2 user takes (read the body, hash, SignHTTP), and crypto/sha256 alone over
// the same bytes as the floor.
func BenchmarkHashPayload1MiB(b *testing.B) {
	data := bytes.Repeat([]byte("chancery"), 1<<17)
	newPUT := func() *http.Request {
		req, _ := http.NewRequest(http.MethodPut, "https://examplebucket.s3.eu-west-1.amazonaws.com/big", bytes.NewReader(data))
		return req
	}
	b.Run("chancery", func(b *testing.B) {
		s := &sigv4.Signer{DisableURIPathEscaping: true, ContentSHA256Header: true}
		p := sigv4.Params{Service: "s3", Region: "eu-west-1", Time: benchTime}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Sign(newPUT(), benchCreds, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("aws-sdk-go-v2", func(b *testing.B) {
		s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		creds := aws.Credentials{AccessKeyID: benchCreds.AccessKeyID, SecretAccessKey: benchCreds.SecretAccessKey, SessionToken: benchCreds.SessionToken}
		ctx := context.Background()
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			req := newPUT()
			body, _ := req.GetBody()
			h := sha256.New()
			if _, err := io.Copy(h, body); err != nil {
				b.Fatal(err)
			}
			if err := s.SignHTTP(ctx, creds, req, hex.EncodeToString(h.Sum(nil)), "s3", "eu-west-1", benchTime); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			h := sha256.New()
			h.Write(data)
			_ = h.Sum(nil)
		}
	})
}
