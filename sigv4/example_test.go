package sigv4_test

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/chancery/chancery/sigv4"
)

func ExampleTransport() {
	creds := sigv4.StaticCredentials{AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY")}
	client := &http.Client{Transport: &sigv4.Transport{Credentials: creds}}
	resp, err := client.Get("https://sqs.eu-west-1.amazonaws.com/?Action=ListQueues&Version=2012-11-05")

	if err == nil {
		resp.Body.Close()
	}
}

func ExampleSigner_Presign() {
	req, _ := http.NewRequest(http.MethodGet, "https://examplebucket.s3.amazonaws.com/test.txt", nil)
	s := &sigv4.Signer{DisableURIPathEscaping: true} // S3 rules
	u, err := s.Presign(req, sigv4.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		sigv4.Params{Service: "s3", Region: "us-east-1", PayloadHash: sigv4.UnsignedPayload,
			Time: time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC), Expires: 24 * time.Hour})
	if err != nil {
		panic(err)
	}
	fmt.Println(u.Query().Get("X-Amz-Signature"))
	// Output: aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404
}

func ExampleInferScope() {
	service, region, _ := sigv4.InferScope("vpce-0a1b2c3d.sts.eu-central-1.vpce.amazonaws.com")
	fmt.Println(service, region)
	// Output: sts eu-central-1
}

func ExampleNewProxy() {
	proxy, err := sigv4.NewProxy(sigv4.ProxyConfig{
		Upstream:    "https://aps-workspaces.us-east-1.amazonaws.com",
		Credentials: sigv4.StaticCredentials{AccessKeyID: "AKID", SecretAccessKey: "secret"},
	})
	if err != nil {
		panic(err)
	}
	_ = http.ListenAndServe // http.ListenAndServe("127.0.0.1:8005", proxy)
	fmt.Println(proxy != nil)
	// Output: true
}
