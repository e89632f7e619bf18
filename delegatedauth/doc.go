// Package delegatedauth is the client side of delegated authentication: a workload
// signs an STS GetCallerIdentity request with the AWS credentials it already runs with
// (the proof), exchanges it at a broker for a managed API key, and keeps that key fresh
// in the background, falling back to a static key when it runs off-cloud or the broker
// has never answered. The proof's wire format is the Datadog agent's, so a Chancery
// broker and a Datadog intake accept the same proofs.
//
// The pieces compose like golang.org/x/oauth2's: an AWSProver makes proofs, an
// Exchanger (a KeySource) trades one for a key at every call, a Refresher (also a
// KeySource) keeps one key fresh and tells subscribers when it changes, and a Set holds
// one Refresher per name, for a process that needs keys for several tenants. APIKey
// redacts itself wherever it is printed or logged.
package delegatedauth
