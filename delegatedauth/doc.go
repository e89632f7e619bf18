// Package delegatedauth is the client side of delegated authentication: a workload
// signs an STS GetCallerIdentity request with the AWS credentials it already runs with
// (the proof), exchanges it at a broker for a managed API key, and keeps that key fresh
// in the background, falling back to a static key when it runs off-cloud or the broker
// has never answered. The proof's wire format is the Datadog agent's, so a Chancery
// broker and a Datadog intake accept the same proofs.
package delegatedauth
