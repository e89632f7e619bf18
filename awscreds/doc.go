// Package awscreds finds the AWS credentials a process runs with.
//
// It implements the sources the AWS SDKs use — environment variables, the shared
// config and credentials files (with profiles, role chaining and credential_process),
// web identity (EKS IRSA), the ECS container endpoint, EC2 IMDSv2 and STS AssumeRole —
// behind one small interface, Provider, shaped like oauth2.TokenSource. Chain uses the
// first of them that is configured, in the SDK's default order, and never falls back
// past one that fails; Cache refreshes them ahead of expiry, and Detect tells quickly
// whether the process has an AWS identity at all.
//
// Every Provider satisfies sigv4.CredentialsProvider. Credentials redact their secrets
// in String and LogValue, and no error returned by this package contains a secret.
package awscreds
