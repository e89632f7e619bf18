package keybroker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chancery/chancery/delegatedauth"
	"github.com/chancery/chancery/internal/testenv"
	"github.com/chancery/chancery/keybroker"
	"github.com/chancery/chancery/store"
	"github.com/chancery/chancery/store/storetest"
)

const (
	serverID = "broker-test"
	tenant   = "acme"
	gcibody  = "Action=GetCallerIdentity&Version=2011-06-15"
)

// fakeClock is a settable clock for key expiry; proofs are signed with real time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// awsEnv is moto with an IAM role the admin may assume, and that role's credentials.
type awsEnv struct {
	moto      *testenv.MotoServer
	roleARN   string
	roleCreds aws.Credentials
	adminARN  string
}

func newAWSEnv(t *testing.T, roleName string) *awsEnv {
	t.Helper()
	m := testenv.Moto(t)
	ctx := context.Background()
	admin := credentials.NewStaticCredentialsProvider(m.AccessKeyID, m.SecretAccessKey, "")
	iamc := iam.New(iam.Options{Region: m.Region, BaseEndpoint: aws.String(m.URL), Credentials: admin})
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + m.AccountID + `:user/admin"},"Action":"sts:AssumeRole"}]}` // moto matches principals exactly
	role, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(roleName), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatalf("create role: %v\n%s", err, m.Output())
	}
	env := &awsEnv{moto: m, roleARN: aws.ToString(role.Role.Arn), adminARN: "arn:aws:iam::" + m.AccountID + ":user/admin"}
	env.roleCreds = env.assume(t, "workload-1")
	return env
}

// assume returns credentials for a new session of the role.
func (e *awsEnv) assume(t *testing.T, session string) aws.Credentials {
	t.Helper()
	admin := credentials.NewStaticCredentialsProvider(e.moto.AccessKeyID, e.moto.SecretAccessKey, "")
	stsc := sts.New(sts.Options{Region: e.moto.Region, BaseEndpoint: aws.String(e.moto.URL), Credentials: admin})
	out, err := stsc.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(e.roleARN), RoleSessionName: aws.String(session)})
	if err != nil {
		t.Fatalf("assume role: %v", err)
	}
	return aws.Credentials{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
	}
}

// proofSpec describes a proof to build; the zero value plus credentials is a good one.
type proofSpec struct {
	creds     aws.Credentials
	url       string
	body      string
	orgID     string
	serverID  string
	signedAt  time.Time
	signed    map[string]string // extra headers, signed
	unsigned  map[string]string // headers added after signing
	tamper    func(*delegatedauth.Proof)
	omitOrgID bool
}

// proofSeq makes every test proof's signing time distinct: a second apart, counting
// back from when the tests started (well inside the broker's ±15m window).
var (
	proofBase = time.Now()
	proofSeq  atomic.Int64
)

// makeProof signs a proof with aws-sdk-go-v2's signer: the broker is tested against
// the reference implementation, not against our own client.
func makeProof(t testing.TB, s proofSpec) string {
	t.Helper()
	if s.body == "" {
		s.body = gcibody
	}
	if s.orgID == "" {
		s.orgID = tenant
	}
	if s.serverID == "" {
		s.serverID = serverID
	}
	if s.signedAt.IsZero() {
		// Proofs signed in the same second by the same key are identical (and so a replay
		// of each other); give each its own second, going back from now.
		s.signedAt = proofBase.Add(-time.Duration(proofSeq.Add(1)) * time.Second)
	}
	req, err := http.NewRequest(http.MethodPost, s.url, strings.NewReader(s.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if !s.omitOrgID {
		req.Header.Set("X-Ddog-Org-Id", s.orgID)
	}
	req.Header.Set("X-Chancery-Server-Id", s.serverID)
	for k, v := range s.signed {
		req.Header.Set(k, v)
	}
	sum := sha256.Sum256([]byte(s.body))
	if err := v4.NewSigner().SignHTTP(context.Background(), s.creds, req, hex.EncodeToString(sum[:]), "sts", "us-east-1", s.signedAt); err != nil {
		t.Fatal(err)
	}
	for k, v := range s.unsigned {
		req.Header.Set(k, v)
	}
	h := req.Header.Clone()
	h.Set("Host", req.URL.Host)
	p := delegatedauth.Proof{Method: http.MethodPost, URL: s.url, Header: h, Body: []byte(s.body)}
	if s.tamper != nil {
		s.tamper(&p)
	}
	return p.Encode()
}

type testBroker struct {
	*keybroker.Broker
	url   string
	clock *fakeClock
}

func newBroker(t *testing.T, db *store.DB, cfg keybroker.Config) *testBroker {
	t.Helper()
	clock := &fakeClock{now: time.Now()}
	b, err := keybroker.New(context.Background(), cfg, db, keybroker.Options{
		Now:    clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	mux := http.NewServeMux()
	b.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testBroker{Broker: b, url: srv.URL, clock: clock}
}

func brokerConfig(env *awsEnv) keybroker.Config {
	return keybroker.Config{
		ServerID:                 serverID,
		STSEndpoints:             []string{env.moto.URL},
		ExchangesPerClientMinute: -1, // every test client is 127.0.0.1; TestClientRateLimit covers it
		Bindings: []keybroker.Binding{
			{Role: env.roleARN, Tenant: tenant, TTL: time.Hour, Scopes: []string{"secrets:read"}},
			{Role: "arn:aws:iam::" + env.moto.AccountID + ":role/other-*", Tenant: "other"},
		},
	}
}

// exchange posts a proof and returns the status and decoded reply.
func exchange(t *testing.T, brokerURL, proof string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, brokerURL+"/api/v2/intake-key", nil)
	req.Header.Set("Authorization", "Delegated "+proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func apiKeyOf(t *testing.T, reply map[string]any) string {
	t.Helper()
	data, _ := reply["data"].(map[string]any)
	attrs, _ := data["attributes"].(map[string]any)
	key, _ := attrs["api_key"].(string)
	if !strings.HasPrefix(key, keybroker.KeyPrefix) {
		t.Fatalf("reply has no api key: %v", reply)
	}
	return key
}

func TestExchangeIssuesKeyForAssumedRole(t *testing.T) {
	env := newAWSEnv(t, "web")
	b := newBroker(t, storetest.SQLite(t), brokerConfig(env))

	status, reply := exchange(t, b.url, makeProof(t, proofSpec{creds: env.roleCreds, url: env.moto.URL}))
	if status != http.StatusOK {
		t.Fatalf("exchange = %d %v\nmoto: %s", status, reply, env.moto.Output())
	}
	key := apiKeyOf(t, reply)
	info, err := b.Introspect(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	// The assumed-role session ARN is bound as its role.
	if info.Tenant != tenant || info.Identity != env.roleARN || strings.Join(info.Scopes, ",") != "secrets:read" {
		t.Fatalf("introspection = %+v", info)
	}
	if d := info.ExpiresAt.Sub(info.CreatedAt); d != time.Hour {
		t.Fatalf("key lifetime %s, want the binding's 1h", d)
	}

	// The holder can ask who it is; anyone else cannot.
	for _, tc := range []struct {
		auth string
		want int
	}{{"Bearer " + key, 200}, {"Bearer " + key[:len(key)-1] + "x", 401}, {"", 401}} {
		req, _ := http.NewRequest("GET", b.url+"/v1/keys/self", nil)
		req.Header.Set("Authorization", tc.auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || bytes.Contains(body, []byte(key)) {
			t.Errorf("/v1/keys/self with %q = %d %s", tc.auth, resp.StatusCode, body)
		}
	}

	// The key is stored only as a hash.
	keys, err := b.Keys().List(context.Background(), keybroker.KeyFilter{})
	if err != nil || len(keys) != 1 {
		t.Fatalf("list = %v, %v", keys, err)
	}
	if strings.Contains(keys[0].ID, key) {
		t.Fatal("key material in the stored record")
	}
}

// recordingListener counts connections, to prove the broker never dialled it.
type recordingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func TestExchangeRefusals(t *testing.T) {
	env := newAWSEnv(t, "web")
	unbound := newAWSEnv(t, "batch") // a second moto: a role no binding names
	cfg := brokerConfig(env)
	cfg.STSEndpoints = append(cfg.STSEndpoints, unbound.moto.URL)
	b := newBroker(t, storetest.SQLite(t), cfg)

	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	attacker := &recordingListener{Listener: inner}
	go http.Serve(attacker, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:role/web</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>`))
	}))
	defer attacker.Close()
	attackerURL := "http://" + attacker.Addr().String()

	good := proofSpec{creds: env.roleCreds, url: env.moto.URL}
	with := func(f func(*proofSpec)) string { s := good; f(&s); return makeProof(t, s) }
	wrongKey := env.roleCreds
	wrongKey.SecretAccessKey = "x" + wrongKey.SecretAccessKey[1:]
	replayed := makeProof(t, good)
	if status, reply := exchange(t, b.url, replayed); status != 200 {
		t.Fatalf("first use of a proof = %d %v", status, reply)
	}

	tests := []struct {
		name   string
		proof  string
		status int
		title  string
	}{
		{"tampered body", with(func(s *proofSpec) {
			s.tamper = func(p *delegatedauth.Proof) { p.Body = []byte("Version=2011-06-15&Action=GetCallerIdentity") }
		}), 401, "STS rejected the proof"},
		{"extra body parameter", with(func(s *proofSpec) { s.body = gcibody + "&RoleArn=x" }), 401, "not exactly Action=GetCallerIdentity"},
		{"other action", with(func(s *proofSpec) { s.body = "Action=AssumeRole&Version=2011-06-15" }), 401, "not exactly"},
		{"attacker URL", with(func(s *proofSpec) { s.url = attackerURL }), 401, "not an allowed STS endpoint"},
		{"attacker URL with allowed Host", with(func(s *proofSpec) {
			s.tamper = func(p *delegatedauth.Proof) { p.URL = attackerURL }
		}), 401, "not an allowed STS endpoint"},
		{"URL with a path", with(func(s *proofSpec) {
			s.tamper = func(p *delegatedauth.Proof) { p.URL = env.moto.URL + "/@" + attacker.Addr().String() }
		}), 401, "not an STS endpoint"},
		{"Host differs from URL", with(func(s *proofSpec) {
			s.tamper = func(p *delegatedauth.Proof) { p.Header.Set("Host", attacker.Addr().String()) }
		}), 401, "Host header does not match"},
		{"unsigned tenant header", with(func(s *proofSpec) {
			s.omitOrgID = true
			s.unsigned = map[string]string{"X-Ddog-Org-Id": tenant}
		}), 401, "does not sign the x-ddog-org-id header"},
		{"tenant header changed after signing", with(func(s *proofSpec) {
			s.tamper = func(p *delegatedauth.Proof) { p.Header.Set("X-Ddog-Org-Id", "other") }
		}), 401, "STS rejected the proof"},
		{"wrong server id", with(func(s *proofSpec) { s.serverID = "another-broker" }), 401, "for another server"},
		{"signed 20 minutes ago", with(func(s *proofSpec) { s.signedAt = time.Now().Add(-20 * time.Minute) }), 401, "outside ±15m0s"},
		{"signed 20 minutes ahead", with(func(s *proofSpec) { s.signedAt = time.Now().Add(20 * time.Minute) }), 401, "outside ±15m0s"},
		{"replayed", replayed, 401, "already been used"},
		{"wrong secret key", with(func(s *proofSpec) { s.creds = wrongKey }), 401, "STS rejected the proof"},
		{"hop-by-hop header signed", with(func(s *proofSpec) {
			s.tamper = func(p *delegatedauth.Proof) {
				p.Header.Set("Authorization", strings.Replace(p.Header.Get("Authorization"), "SignedHeaders=", "SignedHeaders=connection;", 1))
			}
		}), 401, "signs the connection header"},
		{"signature repeated to dodge the replay check", with(func(s *proofSpec) {
			s.tamper = func(p *delegatedauth.Proof) {
				p.Header.Set("Authorization", p.Header.Get("Authorization")+", Signature="+strings.Repeat("ab", 32))
			}
		}), 401, "repeats Signature"},
		{"GET method", with(func(s *proofSpec) { s.tamper = func(p *delegatedauth.Proof) { p.Method = "GET" } }), 401, "not POST"},
		{"tenant not bound to the role", with(func(s *proofSpec) { s.orgID = "other" }), 403, "may not have a key"},
		{"unbound role", makeProof(t, proofSpec{creds: unbound.roleCreds, url: unbound.moto.URL}), 403, "may not have a key"},
		{"malformed base64", "@@@|e30=|POST|aHR0cDovL2E=", 400, "not base64"},
		{"malformed JSON", "YQ==|" + "bm90IGpzb24=" + "|POST|aHR0cDovL2E=", 400, "not a JSON object"},
		{"not a proof", "hello", 400, "malformed delegated auth proof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reply := exchange(t, b.url, tt.proof)
			errs, _ := reply["errors"].([]any)
			title := ""
			if len(errs) == 1 {
				title, _ = errs[0].(map[string]any)["title"].(string)
			}
			if status != tt.status || !strings.Contains(title, tt.title) {
				t.Fatalf("= %d %v, want %d with a title containing %q", status, reply, tt.status, tt.title)
			}
			if tt.status == 403 && (strings.Contains(title, "arn:") || strings.Contains(title, "role")) {
				t.Fatalf("a 403 must not hint at bindings: %q", title)
			}
		})
	}
	if n := attacker.accepted.Load(); n != 0 {
		t.Fatalf("the broker connected to the attacker's URL %d times", n)
	}

	t.Run("2 MiB proof", func(t *testing.T) {
		big := strings.Repeat("A", 2<<20)
		status, _ := exchange(t, b.url, big)
		if status != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("= %d, want 431", status)
		}
	})
	t.Run("no authorization", func(t *testing.T) {
		resp, err := http.Post(b.url+"/api/v2/intake-key", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("= %d, want 401", resp.StatusCode)
		}
	})
}

func TestClientRateLimit(t *testing.T) {
	env := newAWSEnv(t, "web")
	cfg := brokerConfig(env)
	cfg.ExchangesPerClientMinute = 6 // a burst of 1, then one every 10s
	b := newBroker(t, storetest.SQLite(t), cfg)
	if status, reply := exchange(t, b.url, makeProof(t, proofSpec{creds: env.roleCreds, url: env.moto.URL})); status != 200 {
		t.Fatalf("first exchange = %d %v", status, reply)
	}
	status, reply := exchange(t, b.url, makeProof(t, proofSpec{creds: env.roleCreds, url: env.moto.URL}))
	if status != http.StatusTooManyRequests {
		t.Fatalf("second exchange at once = %d %v, want 429", status, reply)
	}
}

// TestSessionsOfOneRoleKeepTheirKeys: two workloads running as one role (two sessions)
// each get a key, and neither exchange cuts the other's key short; each session's own
// next exchange rotates only its own key.
func TestSessionsOfOneRoleKeepTheirKeys(t *testing.T) {
	env := newAWSEnv(t, "web")
	b := newBroker(t, storetest.SQLite(t), brokerConfig(env))
	ctx := context.Background()
	other := env.assume(t, "workload-2")
	keyOf := func(creds aws.Credentials) keybroker.KeyInfo {
		t.Helper()
		status, reply := exchange(t, b.url, makeProof(t, proofSpec{creds: creds, url: env.moto.URL}))
		if status != 200 {
			t.Fatalf("exchange = %d %v", status, reply)
		}
		info, err := b.Introspect(ctx, apiKeyOf(t, reply))
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	a1, b1 := keyOf(env.roleCreds), keyOf(other)
	if a1.Identity != b1.Identity || a1.Principal == b1.Principal {
		t.Fatalf("identities %q %q, principals %q %q: want one role, two sessions", a1.Identity, b1.Identity, a1.Principal, b1.Principal)
	}
	list, _ := b.Keys().List(ctx, keybroker.KeyFilter{ID: a1.ID})
	if !list[0].ExpiresAt.Equal(a1.ExpiresAt) {
		t.Fatalf("another session's exchange cut key %s to %s", a1.ID, list[0].ExpiresAt)
	}
	a2 := keyOf(env.roleCreds)
	list, _ = b.Keys().List(ctx, keybroker.KeyFilter{Identity: env.roleARN})
	for _, k := range list {
		cut := k.ExpiresAt.Before(a1.ExpiresAt)
		if (k.ID == a1.ID) != cut {
			t.Errorf("key %s (principal %s) expires %s; only %s should be cut short by %s", k.ID, k.Principal, k.ExpiresAt, a1.ID, a2.ID)
		}
	}
}

// TestClientIDGroupsRotation: a client that names itself (signed x-chancery-client-id)
// rotates its own previous key even when its STS session changed, and nobody else's;
// max_keys_per_identity bounds clients that never reuse a group.
func TestClientIDGroupsRotation(t *testing.T) {
	env := newAWSEnv(t, "web")
	cfg := brokerConfig(env)
	cfg.MaxKeysPerIdentity = 3
	b := newBroker(t, storetest.SQLite(t), cfg)
	ctx := context.Background()
	issue := func(creds aws.Credentials, clientID string) keybroker.KeyInfo {
		t.Helper()
		b.clock.Add(time.Second) // keys issued at distinct times, newest last
		spec := proofSpec{creds: creds, url: env.moto.URL}
		if clientID != "" {
			spec.signed = map[string]string{"X-Chancery-Client-Id": clientID}
		}
		status, reply := exchange(t, b.url, makeProof(t, spec))
		if status != 200 {
			t.Fatalf("exchange = %d %v", status, reply)
		}
		info, err := b.Introspect(ctx, apiKeyOf(t, reply))
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	expiry := func(id string) time.Time {
		t.Helper()
		list, err := b.Keys().List(ctx, keybroker.KeyFilter{ID: id})
		if err != nil || len(list) != 1 {
			t.Fatalf("list %s: %v %v", id, list, err)
		}
		return list[0].ExpiresAt
	}
	first := issue(env.roleCreds, "pod-a")
	other := issue(env.roleCreds, "pod-b") // same session, another client: untouched
	second := issue(env.assume(t, "refreshed"), "pod-a")
	if !expiry(first.ID).Before(first.ExpiresAt) {
		t.Errorf("pod-a's first key was not rotated out by its next key from a new session")
	}
	if !expiry(other.ID).Equal(other.ExpiresAt) {
		t.Errorf("pod-b's key was cut by pod-a's exchange")
	}
	if !expiry(second.ID).Equal(second.ExpiresAt) {
		t.Errorf("the newest key was cut")
	}
	// Clients without an id, each in its own session: the cap (3) cuts the oldest.
	for i := range 2 {
		issue(env.assume(t, "oneshot-"+strconv.Itoa(i)), "")
	}
	if !expiry(other.ID).Before(other.ExpiresAt) {
		t.Errorf("the identity's oldest active key survived beyond max_keys_per_identity")
	}

	status, reply := exchange(t, b.url, makeProof(t, proofSpec{creds: env.roleCreds, url: env.moto.URL,
		unsigned: map[string]string{"X-Chancery-Client-Id": "pod-a"}}))
	if status != 401 {
		t.Fatalf("unsigned client id = %d %v, want 401", status, reply)
	}
}

func TestOneRoleBoundToTwoTenants(t *testing.T) {
	env := newAWSEnv(t, "web")
	cfg := brokerConfig(env)
	cfg.Bindings = append(cfg.Bindings, keybroker.Binding{Role: "arn:aws:iam::" + env.moto.AccountID + ":role/w*", Tenant: "globex"})
	b := newBroker(t, storetest.SQLite(t), cfg)
	for _, tnt := range []string{tenant, "globex"} {
		status, reply := exchange(t, b.url, makeProof(t, proofSpec{creds: env.roleCreds, url: env.moto.URL, orgID: tnt}))
		if status != 200 {
			t.Fatalf("exchange for %s = %d %v", tnt, status, reply)
		}
		if info, err := b.Introspect(context.Background(), apiKeyOf(t, reply)); err != nil || info.Tenant != tnt {
			t.Fatalf("key for %s: %+v %v", tnt, info, err)
		}
	}
}

func TestMetricsSurviveASecondBroker(t *testing.T) {
	reg := prometheus.NewRegistry()
	db := storetest.SQLite(t)
	cfg := keybroker.Config{ServerID: "m", Bindings: []keybroker.Binding{{Role: "arn:aws:iam::1:role/x", Tenant: "t"}}}
	for range 2 {
		b, err := keybroker.New(context.Background(), cfg, db, keybroker.Options{Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
}

func TestRotationAndRevocation(t *testing.T) {
	env := newAWSEnv(t, "web")
	cfg := brokerConfig(env)
	cfg.RotationOverlap = 5 * time.Minute
	b := newBroker(t, storetest.SQLite(t), cfg)
	ctx := context.Background()
	issue := func() string {
		t.Helper()
		status, reply := exchange(t, b.url, makeProof(t, proofSpec{creds: env.roleCreds, url: env.moto.URL}))
		if status != 200 {
			t.Fatalf("exchange = %d %v", status, reply)
		}
		return apiKeyOf(t, reply)
	}
	first := issue()
	second := issue()
	if first == second {
		t.Fatal("a second exchange returned the same key")
	}
	// Within the overlap both work; after it only the new one does.
	for _, k := range []string{first, second} {
		if _, err := b.Introspect(ctx, k); err != nil {
			t.Fatalf("during the overlap: %v", err)
		}
	}
	b.clock.Add(5*time.Minute + time.Second)
	if _, err := b.Introspect(ctx, first); !errors.Is(err, keybroker.ErrUnknownKey) {
		t.Fatalf("rotated-out key after the overlap: err = %v", err)
	}
	if _, err := b.Introspect(ctx, second); err != nil {
		t.Fatalf("current key after the overlap: %v", err)
	}

	// Revocation by key, then by identity, then by tenant.
	third := issue()
	n, err := b.Keys().Revoke(ctx, keybroker.KeyFilter{Key: keybroker.APIKey(third)})
	if err != nil || n != 1 {
		t.Fatalf("revoke by key: %d, %v", n, err)
	}
	waitUnknown(t, b.Broker, third)
	fourth := issue()
	if n, err := b.Keys().Revoke(ctx, keybroker.KeyFilter{Identity: env.roleARN}); err != nil || n < 1 {
		t.Fatalf("revoke by identity: %d, %v", n, err)
	}
	waitUnknown(t, b.Broker, fourth)
	fifth := issue()
	if n, err := b.Keys().Revoke(ctx, keybroker.KeyFilter{Tenant: tenant}); err != nil || n != 1 {
		t.Fatalf("revoke by tenant: %d, %v", n, err)
	}
	waitUnknown(t, b.Broker, fifth)
	if _, err := b.Keys().Revoke(ctx, keybroker.KeyFilter{}); !errors.Is(err, keybroker.ErrNoFilter) {
		t.Fatalf("revoke everything by accident: err = %v", err)
	}
}

// waitUnknown waits until the broker refuses key (notifications are asynchronous).
func waitUnknown(t *testing.T, b *keybroker.Broker, key string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := b.Introspect(context.Background(), key)
		if errors.Is(err, keybroker.ErrUnknownKey) {
			return time.Since(start)
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("key still accepted 15s after revocation (err %v)", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplicasShareKeysAndRevocations runs two brokers on one PostgreSQL database, as
// two `chancery serve` replicas would be.
func TestReplicasShareKeysAndRevocations(t *testing.T) {
	env := newAWSEnv(t, "web")
	pg := testenv.Postgres(t)
	cfg := brokerConfig(env)
	cfg.SyncInterval = time.Hour // only notifications can propagate within the test
	a := newBroker(t, storetest.OpenPostgres(t, pg, "replicas"), cfg)
	b := newBroker(t, storetest.OpenPostgres(t, pg, "replicas"), cfg)
	ctx := context.Background()

	status, reply := exchange(t, a.url, makeProof(t, proofSpec{creds: env.roleCreds, url: env.moto.URL}))
	if status != 200 {
		t.Fatalf("exchange on A = %d %v", status, reply)
	}
	key := apiKeyOf(t, reply)
	if _, err := b.Introspect(ctx, key); err != nil {
		t.Fatalf("B does not accept A's key: %v", err)
	}
	// A replayed proof is refused by the other replica too.
	proof := makeProof(t, proofSpec{creds: env.roleCreds, url: env.moto.URL})
	if s, _ := exchange(t, a.url, proof); s != 200 {
		t.Fatalf("exchange = %d", s)
	}
	if s, reply := exchange(t, b.url, proof); s != 401 {
		t.Fatalf("replay on B = %d %v, want 401", s, reply)
	}
	keyA2 := apiKeyOf(t, func() map[string]any {
		_, r := exchange(t, a.url, makeProof(t, proofSpec{creds: env.roleCreds, url: env.moto.URL, signedAt: time.Now().Add(time.Second)}))
		return r
	}())
	if _, err := b.Introspect(ctx, keyA2); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Keys().Revoke(ctx, keybroker.KeyFilter{Key: keybroker.APIKey(keyA2)}); err != nil {
		t.Fatal(err)
	}
	took := waitUnknown(t, b.Broker, keyA2)
	t.Logf("revocation on A refused by B after %s (LISTEN/NOTIFY)", took)
}

// TestLostNotificationsResyncWithinSyncInterval changes a key behind the brokers' backs
// (no notification at all): the periodic resync must still catch it.
func TestLostNotificationsResyncWithinSyncInterval(t *testing.T) {
	env := newAWSEnv(t, "web")
	pg := testenv.Postgres(t)
	cfg := brokerConfig(env)
	cfg.SyncInterval = 200 * time.Millisecond
	db := storetest.OpenPostgres(t, pg, "lost")
	b := newBroker(t, db, cfg)
	status, reply := exchange(t, b.url, makeProof(t, proofSpec{creds: env.roleCreds, url: env.moto.URL}))
	if status != 200 {
		t.Fatalf("exchange = %d %v", status, reply)
	}
	key := apiKeyOf(t, reply)
	now := time.Now().UnixMilli()
	if _, err := db.ExecContext(context.Background(), "UPDATE keybroker_keys SET revoked_at = $1, updated_at = $1", now); err != nil {
		t.Fatal(err)
	}
	took := waitUnknown(t, b.Broker, key)
	t.Logf("silent revocation picked up after %s (sync interval %s)", took, cfg.SyncInterval)
}

// TestKeysStorage is the storage conformance suite, run on SQLite and PostgreSQL.
func TestKeysStorage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys, err := keybroker.NewKeys(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		mk := func(id, identity, tnt string, created time.Time) keybroker.KeyInfo {
			return keybroker.KeyInfo{ID: id, Tenant: tnt, Identity: identity, Scopes: []string{"a", "b"},
				CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
		}
		k1 := mk("key_1", "arn:aws:iam::1:role/x", "t1", now)
		if err := keys.Issue(ctx, k1, "chy_one", time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		k2 := mk("key_2", "arn:aws:iam::1:role/x", "t1", now.Add(time.Second))
		if err := keys.Issue(ctx, k2, "chy_two", time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		k3 := mk("key_3", "arn:aws:iam::1:role/y", "t2", now.Add(2*time.Second))
		if err := keys.Issue(ctx, k3, "chy_three", time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		// Re-issuing a key id or key is refused (and changes nothing).
		if err := keys.Issue(ctx, mk("key_1", "z", "t", now), "chy_other", time.Minute, 0); err == nil {
			t.Fatal("duplicate key id accepted")
		}

		all, err := keys.List(ctx, keybroker.KeyFilter{})
		if err != nil || len(all) != 3 || all[0].ID != "key_3" || all[2].ID != "key_1" {
			t.Fatalf("list = %+v, %v", all, err)
		}
		if got := all[2]; !got.ExpiresAt.Equal(k2.CreatedAt.Add(time.Minute)) {
			t.Fatalf("key_1 expires %s, want cut to key_2's issue + overlap", got.ExpiresAt)
		}
		if got := all[1]; !got.ExpiresAt.Equal(k2.ExpiresAt) || strings.Join(got.Scopes, " ") != "a b" {
			t.Fatalf("key_2 = %+v", got)
		}
		byKey, err := keys.List(ctx, keybroker.KeyFilter{Key: "chy_two"})
		if err != nil || len(byKey) != 1 || byKey[0].ID != "key_2" {
			t.Fatalf("list by key = %+v, %v", byKey, err)
		}
		n, err := keys.Revoke(ctx, keybroker.KeyFilter{Tenant: "t1"})
		if err != nil || n != 2 {
			t.Fatalf("revoke tenant t1 = %d, %v", n, err)
		}
		if n, _ := keys.Revoke(ctx, keybroker.KeyFilter{Tenant: "t1"}); n != 0 {
			t.Fatalf("revoking again revoked %d", n)
		}
		left, _ := keys.List(ctx, keybroker.KeyFilter{Tenant: "t2"})
		if len(left) != 1 || !left[0].RevokedAt.IsZero() {
			t.Fatalf("t2 keys = %+v, want untouched", left)
		}
		// The per-identity cap (here 1) cuts the older key of role/y, on both engines.
		k4 := mk("key_4", "arn:aws:iam::1:role/y", "t2", now.Add(3*time.Second))
		k4.Principal = "arn:aws:sts::1:assumed-role/y/other-session"
		if err := keys.Issue(ctx, k4, "chy_four", time.Minute, 1); err != nil {
			t.Fatal(err)
		}
		capped, _ := keys.List(ctx, keybroker.KeyFilter{ID: "key_3"})
		if len(capped) != 1 || !capped[0].ExpiresAt.Equal(k4.CreatedAt.Add(time.Minute)) {
			t.Fatalf("key_3 = %+v, want cut to key_4's issue + overlap by the cap", capped)
		}
		revoked, _ := keys.List(ctx, keybroker.KeyFilter{ID: "key_1"})
		if len(revoked) != 1 || revoked[0].RevokedAt.Sub(now) > time.Minute || revoked[0].RevokedAt.Sub(now) < -time.Minute {
			t.Fatalf("key_1 = %+v, want revoked about now (%s, database clock)", revoked, now)
		}
	})
}

func TestNormalizeARN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"arn:aws:sts::123456789012:assumed-role/web/i-0abc", "arn:aws:iam::123456789012:role/web"},
		{"arn:aws-cn:sts::123456789012:assumed-role/web/sess", "arn:aws-cn:iam::123456789012:role/web"},
		{"arn:aws:iam::123456789012:user/admin", "arn:aws:iam::123456789012:user/admin"},
		{"arn:aws:sts::123456789012:federated-user/bob", "arn:aws:sts::123456789012:federated-user/bob"},
		{"arn:aws:sts::123456789012:assumed-role/", "arn:aws:sts::123456789012:assumed-role/"},
		{"arn:aws:sts::123456789012:assumed-role/noslash", "arn:aws:sts::123456789012:assumed-role/noslash"},
		{"not an arn", "not an arn"},
	}
	for _, tt := range tests {
		if got := keybroker.NormalizeARN(tt.in); got != tt.want {
			t.Errorf("NormalizeARN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := keybroker.Config{ServerID: "prod", Bindings: []keybroker.Binding{{Role: "arn:aws:iam::1:role/web-*", Tenant: "acme"}}}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := keybroker.Config{
		MaxConcurrentSTS:         -1,
		ExchangesPerClientMinute: -2,
		STSEndpoints:             []string{"https://sts.amazonaws.com/path", "ftp://x", "https://user:pw@sts.amazonaws.com"},
		MaxClockSkew:             2 * time.Hour,
		Bindings: []keybroker.Binding{
			{Role: "arn:aws:iam::1:role/*-web", Tenant: "a"},
			{Role: "role/web", Tenant: "a"},
			{Role: "arn:aws:iam::1:role/x", Tenant: ""},
			{Role: "arn:aws:iam::1:role/x", Tenant: "b", TTL: -time.Second, Scopes: []string{"a b"}},
			{Role: "arn:aws:iam::1:role/x", Tenant: "b"},
		},
	}
	want := []string{
		"keybroker.server_id: required",
		"keybroker.sts_endpoints[0]", "keybroker.sts_endpoints[1]", "keybroker.sts_endpoints[2]",
		"keybroker.max_clock_skew",
		"keybroker.bindings[0].role: \"arn:aws:iam::1:role/*-web\": '*' is only allowed at the end",
		"keybroker.bindings[1].role", "keybroker.bindings[2].tenant: required",
		"keybroker.max_concurrent_sts", "keybroker.exchanges_per_client_minute",
		"keybroker.bindings[3].ttl", "keybroker.bindings[3].scopes[0]",
		`keybroker.bindings[4].role: "arn:aws:iam::1:role/x" already bound to tenant "b" by bindings[3]`,
	}
	err := bad.Validate()
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("validation error lacks %q:\n%v", w, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "pw@") {
		t.Errorf("validation error leaks the endpoint's password")
	}
}
