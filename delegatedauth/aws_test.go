package delegatedauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/chancery/chancery/internal/testenv"
	"github.com/chancery/chancery/sigv4"
)

// sendProof decodes an encoded proof and sends the request it holds, as a broker
// would, returning STS's status and body.
func sendProof(t *testing.T, encoded string) (int, []byte) {
	t.Helper()
	p, err := ParseProof(encoded)
	if err != nil {
		t.Fatalf("the encoded proof does not parse: %v", err)
	}
	req, err := http.NewRequest(p.Method, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = p.Header.Clone()
	req.Host = p.Header.Get("Host")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func signedHeaders(t *testing.T, p Proof) []string {
	t.Helper()
	_, rest, ok := strings.Cut(p.Header.Get("Authorization"), "SignedHeaders=")
	if !ok {
		t.Fatalf("no SignedHeaders in %q", p.Header.Get("Authorization"))
	}
	list, _, _ := strings.Cut(rest, ",")
	return strings.Split(list, ";")
}

func TestAWSProofAgainstMoto(t *testing.T) {
	m := testenv.Moto(t)
	admin := sigv4.StaticCredentials{AccessKeyID: m.AccessKeyID, SecretAccessKey: m.SecretAccessKey}
	prover := &AWSProver{Credentials: admin, OrgID: "acme", ServerID: "chancery.example.com", Endpoint: m.URL, ClientID: NewClientID()}
	proof, err := prover.Proof(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("accepted, names the signer", func(t *testing.T) {
		status, body := sendProof(t, proof.Encode())
		var out struct {
			Arn     string `xml:"GetCallerIdentityResult>Arn"`
			Account string `xml:"GetCallerIdentityResult>Account"`
		}
		if status != http.StatusOK || xml.Unmarshal(body, &out) != nil {
			t.Fatalf("moto answered %d: %s", status, body)
		}
		if want := "arn:aws:iam::" + m.AccountID + ":user/admin"; out.Arn != want || out.Account != m.AccountID {
			t.Fatalf("caller = %q in %q, want %q", out.Arn, out.Account, want)
		}
	})

	t.Run("binding headers are signed", func(t *testing.T) {
		signed := strings.Join(signedHeaders(t, proof), ";")
		for _, h := range []string{"content-type", "host", "x-amz-date", "x-chancery-client-id", "x-chancery-server-id", "x-ddog-org-id"} {
			if !strings.Contains(";"+signed+";", ";"+h+";") {
				t.Errorf("SignedHeaders %q lacks %s", signed, h)
			}
		}
		if got := proof.Header.Get(ClientIDHeader); got != prover.ClientID || len(got) != 24 {
			t.Errorf("client id header %q, want the prover's %q", got, prover.ClientID)
		}
		if got := proof.Header.Get("Content-Type"); got != stsContentType {
			t.Errorf("Content-Type = %q", got)
		}
	})

	t.Run("tampered org refused", func(t *testing.T) {
		tampered := proof
		tampered.Header = proof.Header.Clone()
		tampered.Header.Set(OrgIDHeader, "someone-else")
		if status, body := sendProof(t, tampered.Encode()); status != http.StatusForbidden || !bytes.Contains(body, []byte("SignatureDoesNotMatch")) {
			t.Fatalf("moto answered %d to a tampered org: %s", status, body)
		}
	})

	t.Run("tampered server id refused", func(t *testing.T) {
		tampered := proof
		tampered.Header = proof.Header.Clone()
		tampered.Header.Set(ServerIDHeader, "other-server")
		if status, _ := sendProof(t, tampered.Encode()); status != http.StatusForbidden {
			t.Fatalf("moto answered %d to a tampered server id", status)
		}
	})

	t.Run("wrong secret refused", func(t *testing.T) {
		bad := *prover
		bad.Credentials = sigv4.StaticCredentials{AccessKeyID: m.AccessKeyID, SecretAccessKey: "not-" + m.SecretAccessKey}
		p, err := bad.Proof(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if status, body := sendProof(t, p.Encode()); status != http.StatusForbidden || !bytes.Contains(body, []byte("SignatureDoesNotMatch")) {
			t.Fatalf("moto answered %d to a wrong secret: %s", status, body)
		}
	})
}

// TestAWSProofMatchesSDK signs the same request with aws-sdk-go-v2's signer: the
// Authorization headers must be identical.
func TestAWSProofMatchesSDK(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	creds := sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "FwoGZXIvYXdzEXAMPLETOKEN"}
	tests := []struct {
		name, region, endpoint, wantURL, wantRegion string
	}{
		{"global", "", "", "https://sts.amazonaws.com", "us-east-1"},
		{"regional", "eu-west-3", "", "https://sts.eu-west-3.amazonaws.com", "eu-west-3"},
		{"override", "ap-south-1", "http://127.0.0.1:5000", "http://127.0.0.1:5000", "ap-south-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prover := &AWSProver{
				Credentials: sigv4.StaticCredentials(creds), OrgID: "acme", ServerID: "srv-1",
				Region: tt.region, Endpoint: tt.endpoint, Signer: &sigv4.Signer{Now: func() time.Time { return at }},
			}
			p, err := prover.Proof(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if p.URL != tt.wantURL || p.Method != http.MethodPost || string(p.Body) != GetCallerIdentityBody {
				t.Fatalf("proof %s %s %q", p.Method, p.URL, p.Body)
			}
			if p.Header.Get("X-Amz-Security-Token") != creds.SessionToken {
				t.Fatal("the session token is not in the proof")
			}

			req, _ := http.NewRequest(http.MethodPost, tt.wantURL, strings.NewReader(GetCallerIdentityBody))
			for _, h := range []string{"Content-Type", OrgIDHeader, ServerIDHeader} {
				req.Header.Set(h, p.Header.Get(h))
			}
			sum := sha256.Sum256([]byte(GetCallerIdentityBody))
			hash := hex.EncodeToString(sum[:])
			err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{
				AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken,
			}, req, hash, "sts", tt.wantRegion, at)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := p.Header.Get("Authorization"), req.Header.Get("Authorization"); got != want {
				t.Fatalf("Authorization differs from aws-sdk-go-v2's:\n ours %s\n sdk  %s", got, want)
			}
			if p.Header.Get("Host") != req.URL.Host {
				t.Fatalf("Host = %q, want %q", p.Header.Get("Host"), req.URL.Host)
			}
		})
	}
}

func TestAWSProverRefusesBadInput(t *testing.T) {
	creds := sigv4.StaticCredentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}
	credErr := errors.New("no IMDS here")
	tests := []struct {
		name   string
		prover AWSProver
		want   string
	}{
		{"no org", AWSProver{Credentials: creds, ServerID: "s"}, "org id is empty"},
		{"no server id", AWSProver{Credentials: creds, OrgID: "o"}, "server id is empty"},
		{"org with newline", AWSProver{Credentials: creds, OrgID: "o\r\nX-Evil: 1", ServerID: "s"}, "not a valid header value"},
		{"region smuggling a host", AWSProver{Credentials: creds, OrgID: "o", ServerID: "s", Region: "evil.com/x"}, "not an AWS region name"},
		{"endpoint not http", AWSProver{Credentials: creds, OrgID: "o", ServerID: "s", Endpoint: "file:///etc/passwd"}, "not an http(s) URL"},
		{"no credentials provider", AWSProver{OrgID: "o", ServerID: "s"}, "no credentials provider"},
		{"credentials fail", AWSProver{Credentials: sigv4.CredentialsProviderFunc(func(context.Context) (sigv4.Credentials, error) {
			return sigv4.Credentials{}, credErr
		}), OrgID: "o", ServerID: "s"}, "retrieve AWS credentials: no IMDS here"},
		{"half a key pair", AWSProver{Credentials: sigv4.StaticCredentials{AccessKeyID: "AKID", Source: "env"}, OrgID: "o", ServerID: "s"}, `from "env" have no access key pair`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.prover.Proof(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

// TestAWSProverPassesContext: the context reaches credential retrieval, so a slow
// credential source (IMDS, STS) is cancellable.
func TestAWSProverPassesContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	prover := &AWSProver{OrgID: "o", ServerID: "s", Credentials: sigv4.CredentialsProviderFunc(func(ctx context.Context) (sigv4.Credentials, error) {
		return sigv4.Credentials{}, ctx.Err()
	})}
	if _, err := prover.Proof(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
