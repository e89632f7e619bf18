// Package sigv4 signs HTTP requests with AWS Signature Version 4.
//
// Signer signs in the Authorization header (Sign), in the query string (Presign) or
// chunk by chunk (SignStreaming), with the rules of most services or of S3, streaming
// payload hashes and caching derived keys. Transport is an http.RoundTripper that signs
// every request with credentials from a CredentialsProvider, inferring the service and
// region from AWS endpoint hosts (InferScope). NewProxy builds a signing reverse proxy
// on it, and PresignURL presigns a URL.
//
// The package depends on nothing else of Chancery: awscreds provides the credentials.
package sigv4
