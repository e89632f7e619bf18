// Package keybroker is the server side of delegated authentication. A workload sends a
// proof — an STS GetCallerIdentity request it signed but did not send — and the broker
// verifies it without trusting anything in it: the endpoint must be on an allow-list
// (the broker never connects anywhere else), the body exactly GetCallerIdentity, the
// tenant and server-id headers signed, the signature recent and never seen before. Only
// then is the request forwarded to STS, whose answer names the caller. The caller's ARN
// (an assumed-role ARN normalised to its role) is matched against bindings to find its
// tenant, and a fresh 256-bit API key is issued: shown once, stored only as a hash,
// rotating out the identity's previous key after a short overlap.
//
// Keys are validated from an in-memory index in well under a microsecond. Replicas
// sharing one PostgreSQL database see each other's keys and revocations through
// LISTEN/NOTIFY, with a periodic poll as a backstop (see Config.SyncInterval).
package keybroker
