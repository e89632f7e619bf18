package keybroker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chancery/chancery/delegatedauth"
	"github.com/chancery/chancery/keybroker"
	"github.com/chancery/chancery/sigv4"
	"github.com/chancery/chancery/store/storetest"
)

// TestEndToEndRefresherRotatesKeys is the whole delegated-auth path with nothing faked:
// an IAM role in moto (signature checking on), assumed; Chancery's client proves it with
// its own signer; the broker verifies the proof through moto and issues a key; the
// Refresher then rotates it and a subscriber sees every change.
func TestEndToEndRefresherRotatesKeys(t *testing.T) {
	env := newAWSEnv(t, "web")
	b := newBroker(t, storetest.SQLite(t), brokerConfig(env))
	ctx := context.Background()

	exchanger := &delegatedauth.Exchanger{
		Server: b.url,
		Prover: &delegatedauth.AWSProver{
			Credentials: sigv4.StaticCredentials(sigv4.Credentials{
				AccessKeyID:     env.roleCreds.AccessKeyID,
				SecretAccessKey: env.roleCreds.SecretAccessKey,
				SessionToken:    env.roleCreds.SessionToken,
			}),
			OrgID:    tenant,
			ServerID: serverID,
			Endpoint: env.moto.URL,
			ClientID: delegatedauth.NewClientID(),
		},
	}
	// Proofs signed within one second are identical (SigV4 time has second
	// resolution), and the broker refuses the second as a replay: refresh slower.
	r := delegatedauth.NewRefresher(exchanger, delegatedauth.RefresherOptions{
		Name:     "e2e",
		Detect:   func(context.Context) bool { return true },
		Interval: 1200 * time.Millisecond,
	})
	changes := make(chan delegatedauth.Key, 8)
	unsubscribe := r.Subscribe(func(k delegatedauth.Key) { changes <- k })
	defer unsubscribe()
	if err := r.Start(ctx); err != nil {
		t.Fatalf("start: %v\nmoto: %s", err, env.moto.Output())
	}
	defer r.Stop()

	first, err := r.Key(ctx)
	if err != nil || !first.Managed {
		t.Fatalf("first key = %v, %v; want a managed key", first, err)
	}
	info, err := b.Introspect(ctx, first.APIKey.Reveal())
	if err != nil || info.Tenant != tenant || info.Identity != env.roleARN {
		t.Fatalf("broker view of the first key: %+v, %v", info, err)
	}

	var rotated delegatedauth.Key
	deadline := time.After(30 * time.Second)
	for rotated.APIKey.Reveal() == "" || rotated.APIKey.Reveal() == first.APIKey.Reveal() {
		select {
		case rotated = <-changes:
		case <-deadline:
			t.Fatalf("no rotation within 30s; status %+v", r.Status())
		}
	}
	if now, _ := r.Key(ctx); now.APIKey.Reveal() != rotated.APIKey.Reveal() {
		t.Fatal("the refresher serves a different key than it announced")
	}
	// Both work during the overlap; after it, only the new one.
	for _, k := range []delegatedauth.Key{first, rotated} {
		if _, err := b.Introspect(ctx, k.APIKey.Reveal()); err != nil {
			t.Fatalf("during the overlap: %v", err)
		}
	}
	b.clock.Add(keybroker.DefaultRotationOverlap + time.Second)
	if _, err := b.Introspect(ctx, first.APIKey.Reveal()); !errors.Is(err, keybroker.ErrUnknownKey) {
		t.Fatalf("rotated-out key after the overlap: %v", err)
	}
}
