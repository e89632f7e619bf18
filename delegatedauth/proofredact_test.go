package delegatedauth

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestProofRedacts(t *testing.T) {
	p := sampleProof()
	p.Header.Set("X-Amz-Security-Token", "SESSIONTOKENSECRET")
	p.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=deadbeefcafe")
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("proof", "proof", p)
	for _, out := range []string{fmt.Sprint(p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p), logs.String()} {
		if strings.Contains(out, "deadbeefcafe") || strings.Contains(out, "SESSIONTOKENSECRET") {
			t.Errorf("leaks a secret: %s", out)
		}
		if !strings.Contains(out, "AKIDEXAMPLE/20261123/us-east-1/sts/aws4_request") || !strings.Contains(out, "acme") {
			t.Errorf("does not say which proof it is: %s", out)
		}
	}
}
