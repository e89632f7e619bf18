package awscreds_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/chancery/chancery/awscreds"
)

// The usual setup: the SDKs' default chain behind a refresh-ahead cache.
func Example() {
	creds := awscreds.NewCache(awscreds.DefaultChain(awscreds.Options{}), awscreds.CacheOptions{
		ExpiryWindow: 5 * time.Minute,
		Jitter:       time.Minute,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := creds.Retrieve(ctx)
	var chainErr *awscreds.ChainError
	switch {
	case errors.As(err, &chainErr) && chainErr.NotConfigured():
		log.Print("no AWS credentials configured")
	case err != nil:
		log.Printf("AWS credentials: %v", err)
	default:
		log.Printf("AWS credentials from %s: %v", c.Source, c) // secrets are redacted
	}
}

// Detect answers "are we running with an AWS identity?" in well under a second.
func ExampleDetect() {
	if source, ok := awscreds.Detect(context.Background()); ok {
		log.Printf("AWS identity from %s", source)
	}
}

// A Cache around any Provider, here a static one.
func ExampleNewCache() {
	static := awscreds.Static(awscreds.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"})
	cache := awscreds.NewCache(static, awscreds.CacheOptions{})
	c, err := cache.Retrieve(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c)
	// Output: Credentials{AccessKeyID: AKIDEXAMPLE, SecretAccessKey: [redacted], Source: static}
}

// Assuming a role with the credentials of another provider.
func ExampleAssumeRole() {
	p := &awscreds.AssumeRole{
		STS:             &awscreds.STSClient{Region: "eu-west-1"},
		Source:          awscreds.Env{},
		RoleARN:         "arn:aws:iam::123456789012:role/deploy",
		RoleSessionName: "ci-build",
	}
	_ = awscreds.NewCache(p, awscreds.CacheOptions{})
}
