package keybroker_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/chancery/chancery/keybroker"
	"github.com/chancery/chancery/store/storetest"
)

// BenchmarkIntrospect measures validating an API key from the in-memory index, beside
// the same lookup done in the database (SQLite) on every request, the obvious
// alternative.
func BenchmarkIntrospect(b *testing.B) {
	ctx := context.Background()
	db := storetest.SQLite(b)
	keys, err := keybroker.NewKeys(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	const key = keybroker.APIKey("chy_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	now := time.Now()
	if err := keys.Issue(ctx, keybroker.KeyInfo{ID: "key_bench", Tenant: "t", Identity: "arn:aws:iam::1:role/x",
		Scopes: []string{"secrets:read"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, key, time.Minute, 0); err != nil {
		b.Fatal(err)
	}
	broker, err := keybroker.New(ctx, keybroker.Config{ServerID: "bench", SyncInterval: time.Hour,
		Bindings: []keybroker.Binding{{Role: "arn:aws:iam::1:role/x", Tenant: "t"}}}, db,
		keybroker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()

	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := broker.Introspect(ctx, key.Reveal()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unknown-key", func(b *testing.B) {
		b.ReportAllocs()
		unknown := "chy_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
		for b.Loop() {
			if _, err := broker.Introspect(ctx, unknown); err == nil {
				b.Fatal("unknown key accepted")
			}
		}
	})
	b.Run("sqlite-lookup-peer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got, err := keys.List(ctx, keybroker.KeyFilter{Key: key}); err != nil || len(got) != 1 {
				b.Fatal(err)
			}
		}
	})
}
