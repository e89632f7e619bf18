package delegatedauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/chancery/chancery/sigv4"
)

// BenchmarkProof measures making and encoding a proof, with aws-sdk-go-v2's signer
// (what the Datadog agent uses) as the peer doing the same work.
func BenchmarkProof(b *testing.B) {
	creds := sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "FwoGZXIvYXdzEXAMPLETOKEN"}
	ctx := context.Background()

	b.Run("chancery", func(b *testing.B) {
		prover := &AWSProver{Credentials: sigv4.StaticCredentials(creds), OrgID: "acme", ServerID: "srv-1", Signer: new(sigv4.Signer)}
		b.ReportAllocs()
		for b.Loop() {
			p, err := prover.Proof(ctx)
			if err != nil {
				b.Fatal(err)
			}
			_ = p.Encode()
		}
	})

	b.Run("aws-sdk-go-v2", func(b *testing.B) {
		signer := v4.NewSigner()
		sdkCreds := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, stsGlobalEndpoint, strings.NewReader(GetCallerIdentityBody))
			req.Header.Set("Content-Type", stsContentType)
			req.Header.Set(OrgIDHeader, "acme")
			req.Header.Set(ServerIDHeader, "srv-1")
			sum := sha256.Sum256([]byte(GetCallerIdentityBody))
			if err := signer.SignHTTP(ctx, sdkCreds, req, hex.EncodeToString(sum[:]), "sts", stsGlobalRegion, time.Now()); err != nil {
				b.Fatal(err)
			}
			h := req.Header.Clone()
			h.Set("Host", req.URL.Host)
			_ = Proof{Method: http.MethodPost, URL: stsGlobalEndpoint, Header: h, Body: []byte(GetCallerIdentityBody)}.Encode()
		}
	})
}
