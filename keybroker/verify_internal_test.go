package keybroker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/chancery/chancery/delegatedauth"
)

// testBroker is a Broker with only what check needs.
func checkOnlyBroker() *Broker {
	cfg := Config{ServerID: "bench", STSEndpoints: []string{"https://sts.amazonaws.com"},
		Bindings: []Binding{{Role: "arn:aws:iam::1:role/x", Tenant: "t"}}}.withDefaults()
	b := &Broker{cfg: cfg, allowed: map[string]bool{"https://sts.amazonaws.com": true}, bindings: newBindings(cfg.Bindings)}
	return b
}

// signedLookingProof has the shape of a real proof (the signature itself is only
// checked by STS).
func signedLookingProof(at time.Time) string {
	sig := sha256.Sum256([]byte(at.String()))
	return delegatedauth.Proof{
		Method: http.MethodPost,
		URL:    "https://sts.amazonaws.com",
		Header: http.Header{
			"Host":                 {"sts.amazonaws.com"},
			"Content-Type":         {"application/x-www-form-urlencoded; charset=utf-8"},
			"X-Amz-Date":           {at.UTC().Format("20060102T150405Z")},
			"X-Ddog-Org-Id":        {"t"},
			"X-Chancery-Server-Id": {"bench"},
			"X-Amz-Security-Token": {"FwoGZXIvYXdzEJr//////////wEaDOaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
			"Authorization": {"AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEEXAMPLE12/" + at.UTC().Format("20060102") +
				"/us-east-1/sts/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-security-token;x-chancery-server-id;x-ddog-org-id, Signature=" +
				hex.EncodeToString(sig[:])},
		},
		Body: []byte("Action=GetCallerIdentity&Version=2011-06-15"),
	}.Encode()
}

func TestCheckAcceptsWellFormedProof(t *testing.T) {
	now := time.Now()
	cp, err := checkOnlyBroker().check(signedLookingProof(now), now)
	if err != nil {
		t.Fatal(err)
	}
	if cp.endpoint != "https://sts.amazonaws.com" || cp.orgID != "t" || len(cp.signature) != 64 {
		t.Fatalf("checked proof = %+v", cp)
	}
}

func TestParseAuthorization(t *testing.T) {
	good := "AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + hex.EncodeToString(make([]byte, 32))
	a, err := parseAuthorization(good)
	if err != nil || a.AccessKeyID != "AKID" || a.Region != "us-east-1" || a.Service != "sts" || len(a.SignedHeaders) != 2 {
		t.Fatalf("parse good = %+v, %v", a, err)
	}
	for _, bad := range []string{
		"", "Bearer x", "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request",
		"AWS4-HMAC-SHA256 Credential=a/b/c/aws4_request, SignedHeaders=host, Signature=" + hex.EncodeToString(make([]byte, 32)),
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=xyz",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=" + hex.EncodeToString(make([]byte, 32)) + ", Extra=1",
		"AWS4-HMAC-SHA256 Credential",
	} {
		if _, err := parseAuthorization(bad); err == nil {
			t.Errorf("parseAuthorization(%q) accepted", bad)
		}
	}
}

// FuzzCheck feeds arbitrary proofs to everything the broker does before it calls STS:
// it must never panic, and every refusal must be a *refusal with a 4xx status.
func FuzzCheck(f *testing.F) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.Add(signedLookingProof(now))
	f.Add(signedLookingProof(now.Add(-time.Hour)))
	f.Add("|||")
	f.Add("QQ==|e30=|POST|aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbQ==")
	b := checkOnlyBroker()
	f.Fuzz(func(t *testing.T, s string) {
		cp, err := b.check(s, now)
		if err != nil {
			var ref *refusal
			if !errors.As(err, &ref) || ref.Status < 400 || ref.Status > 499 {
				t.Fatalf("check error %v is not a 4xx refusal", err)
			}
			return
		}
		if !b.allowed[cp.endpoint] || cp.orgID == "" {
			t.Fatalf("accepted a proof for %q org %q", cp.endpoint, cp.orgID)
		}
	})
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + hex.EncodeToString(make([]byte, 32)))
	f.Add("AWS4-HMAC-SHA256 ,,,=")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAuthorization(s)
		if err == nil && (a.AccessKeyID == "" || len(a.Signature) != 64) {
			t.Fatalf("accepted %q as %+v", s, a)
		}
	})
}

// BenchmarkVerifyProof measures the broker-side verification of a proof, everything
// but the STS round trip: decode, allow-list, body, signed headers, clock.
func BenchmarkVerifyProof(b *testing.B) {
	now := time.Now()
	proof := signedLookingProof(now)
	br := checkOnlyBroker()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.check(proof, now); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseAuthorizationRefusesRepeatedFields(t *testing.T) {
	sig := hex.EncodeToString(make([]byte, 32))
	for _, field := range []string{"Credential=a/b/c/d/aws4_request", "SignedHeaders=host", "Signature=" + sig} {
		h := "AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=" + sig + ", " + field
		if _, err := parseAuthorization(h); err == nil {
			t.Errorf("accepted a repeated %s", field)
		}
	}
}

// TestIndexNeverResurrectsARevokedKey: reads that started before a revocation or a
// rotation and land after it must not undo them, whatever the clocks say.
func TestIndexNeverResurrectsARevokedKey(t *testing.T) {
	now := time.Now()
	x := newIndex(newMetrics(nil).active)
	h := sha256.Sum256([]byte("k"))
	active := KeyInfo{ID: "k", ExpiresAt: now.Add(time.Hour)}
	cut := active
	cut.ExpiresAt = now.Add(time.Minute)
	revoked := active
	revoked.RevokedAt = now

	x.apply([]KeyInfo{active}, [][sha256.Size]byte{h}, now)
	if _, found, _ := x.get(h, now); !found {
		t.Fatal("active key not indexed")
	}
	// A rotation cut it short; a stale read of the old expiry lands afterwards.
	x.apply([]KeyInfo{cut}, [][sha256.Size]byte{h}, now)
	x.apply([]KeyInfo{active}, [][sha256.Size]byte{h}, now)
	if info, _, _ := x.get(h, now); !info.ExpiresAt.Equal(cut.ExpiresAt) {
		t.Fatalf("expiry %s after a stale read, want the earlier %s", info.ExpiresAt, cut.ExpiresAt)
	}
	// Revoked; a stale active read lands afterwards.
	x.apply([]KeyInfo{revoked}, [][sha256.Size]byte{h}, now)
	x.apply([]KeyInfo{active}, [][sha256.Size]byte{h}, now)
	if _, found, miss := x.get(h, now); found || !miss {
		t.Fatalf("revoked key found=%v knownMiss=%v after a stale read; want it gone", found, miss)
	}
	// Tombstones are forgotten after tombstoneTTL.
	x.prune(now.Add(tombstoneTTL + time.Second))
	if len(x.active) != 0 || len(x.gone) != 0 {
		t.Fatalf("after tombstoneTTL: %d active, %d tombstones", len(x.active), len(x.gone))
	}
}

func TestDrainNotes(t *testing.T) {
	notes := make(chan string, 100)
	for _, n := range []string{"identity:a", "identity:a", "tenant:t"} {
		notes <- n
	}
	changes, all := drainNotes("hash:x", notes)
	if all || len(changes) != 3 {
		t.Fatalf("changes %v, resync %v; want 3 distinct changes", changes, all)
	}
	notes <- "garbage"
	if _, all := drainNotes("identity:a", notes); !all {
		t.Fatal("an unknown payload must cause a resync")
	}
	for i := range maxNoteBatch + 5 {
		notes <- "id:" + strconv.Itoa(i)
	}
	if _, all := drainNotes("id:x", notes); !all {
		t.Fatal("a large backlog must collapse into one resync")
	}
}
