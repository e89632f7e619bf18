package keybroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chancery/chancery/store"
)

// Broker verifies proofs, issues keys and answers introspection. It is a server
// capability (Name, Register, CheckReady, Close).
type Broker struct {
	cfg      Config
	allowed  map[string]bool // normalised STS endpoints
	bindings *bindings
	keys     *Keys
	db       *store.DB
	index    *index
	sts      *http.Client
	log      *slog.Logger
	metrics  *brokerMetrics
	now      func() time.Time

	limiter  *clientLimiter
	stsSlots chan struct{} // bounds concurrent STS calls

	stop     context.CancelFunc
	syncDone chan struct{}
}

// Options are a Broker's dependencies.
type Options struct {
	Logger   *slog.Logger          // nil: slog.Default()
	Registry prometheus.Registerer // nil: metrics are not exported
	// HTTPClient calls STS; nil: a client that follows no redirects.
	HTTPClient *http.Client
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// New validates cfg, migrates the keybroker's tables in db, loads the active keys into
// memory and starts following other replicas' changes. Close stops it.
func New(ctx context.Context, cfg Config, db *store.DB, opts Options) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	keys, err := NewKeys(ctx, db)
	if err != nil {
		return nil, err
	}
	m := newMetrics(opts.Registry)
	b := &Broker{
		cfg:      cfg,
		allowed:  map[string]bool{},
		bindings: newBindings(cfg.Bindings),
		keys:     keys,
		db:       db,
		index:    newIndex(m.active),
		sts:      opts.HTTPClient,
		log:      opts.Logger,
		metrics:  m,
		now:      opts.Now,
		limiter:  newClientLimiter(cfg.ExchangesPerClientMinute),
		stsSlots: make(chan struct{}, cfg.MaxConcurrentSTS),
		syncDone: make(chan struct{}),
	}
	for _, ep := range cfg.STSEndpoints {
		n, _ := normalizeEndpoint(ep) // validated above
		b.allowed[n] = true
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	keys.log = b.log
	if b.now == nil {
		b.now = time.Now
	}
	if b.sts == nil {
		b.sts = &http.Client{
			// A redirect would send the signed proof somewhere not on the allow-list.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}

	// Subscribe before the initial load so no change falls between the two.
	syncCtx, stop := context.WithCancel(context.Background())
	notes, err := db.Subscribe(syncCtx, notifyChannel)
	if err != nil {
		stop()
		return nil, fmt.Errorf("keybroker: follow key changes: %w", err)
	}
	since, err := b.loadAll(ctx)
	if err != nil {
		stop()
		return nil, fmt.Errorf("keybroker: load keys: %w", err)
	}
	b.stop = stop
	go b.syncLoop(syncCtx, since, notes)
	return b, nil
}

// Name implements server.Capability.
func (b *Broker) Name() string { return "keybroker" }

// Keys returns the broker's key storage (for listing and revoking).
func (b *Broker) Keys() *Keys { return b.keys }

// Register implements server.Capability.
func (b *Broker) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v2/intake-key", b.serveExchange)
	mux.HandleFunc("GET /v1/keys/self", b.serveSelf)
}

// CheckReady implements server.ReadinessChecker: the database must answer.
func (b *Broker) CheckReady(ctx context.Context) error {
	if err := b.db.PingContext(ctx); err != nil {
		return errors.New("database unreachable")
	}
	return nil
}

// Close stops following other replicas' changes. It does not close the database.
func (b *Broker) Close() error {
	b.stop()
	<-b.syncDone
	return nil
}

// maxAuthorizationLen bounds the Authorization header of an exchange; the server's
// header limit refuses anything much larger before it reaches us.
const maxAuthorizationLen = 8 + 32<<10

// seenMargin keeps a proof's signature past its validity window, for replicas whose
// clocks run behind the one that forgets it.
const seenMargin = 5 * time.Minute

// Exchange verifies an encoded proof and issues a key for the identity that signed it.
func (b *Broker) Exchange(ctx context.Context, encodedProof string) (APIKey, KeyInfo, error) {
	now := b.now()
	cp, err := b.check(encodedProof, now)
	if err != nil {
		return "", KeyInfo{}, err
	}
	id, err := b.verifyWithSTS(ctx, cp)
	if err != nil {
		return "", KeyInfo{}, err
	}
	binding, ok := b.bindings.match(id.ARN, id.OrgID)
	if !ok {
		b.log.Info("keybroker: identity not bound to the requested tenant", "arn", id.RawARN, "tenant", id.OrgID)
		return "", KeyInfo{}, refuse(http.StatusForbidden, "unbound", "this identity may not have a key for this tenant")
	}
	key := newAPIKey()
	rotation := id.RawARN
	if cp.clientID != "" {
		rotation = id.ARN + "#client:" + cp.clientID
	}
	info := KeyInfo{
		ID:        newKeyID(),
		Tenant:    binding.Tenant,
		Identity:  id.ARN,
		Principal: id.RawARN,
		Rotation:  rotation,
		Scopes:    binding.Scopes,
		CreatedAt: now.UTC().Truncate(time.Millisecond),
		ExpiresAt: now.Add(binding.TTL).UTC().Truncate(time.Millisecond),
	}
	if err := b.keys.Issue(ctx, info, key, b.cfg.RotationOverlap, b.cfg.MaxKeysPerIdentity); err != nil {
		return "", KeyInfo{}, err
	}
	// Index the new key (and the keys it cut short) before returning it, so it works
	// here at once.
	if err := b.reload(ctx, keyChange{"identity", info.Identity}); err != nil {
		b.log.Warn("keybroker: index new key", "err", err)
	}
	b.log.Info("keybroker: key issued", "key_id", info.ID, "tenant", info.Tenant, "principal", info.Principal,
		"rotation", info.Rotation, "expires", info.ExpiresAt)
	return key, info, nil
}

// verifyWithSTS takes an STS slot, waiting at most a second (a flood of proofs gets
// 503 rather than queueing into STS throttling), records the proof as used — only
// then, so a proof refused for load can be retried — and asks STS who signed it.
func (b *Broker) verifyWithSTS(ctx context.Context, cp *checkedProof) (Identity, error) {
	wait := time.NewTimer(time.Second)
	defer wait.Stop()
	select {
	case b.stsSlots <- struct{}{}:
		defer func() { <-b.stsSlots }()
	case <-wait.C:
		return Identity{}, refuse(http.StatusServiceUnavailable, "throttled", "too many exchanges in progress; retry later")
	case <-ctx.Done():
		return Identity{}, ctx.Err()
	}
	fresh, err := b.keys.markSeen(ctx, cp.signature, cp.signedAt.Add(b.cfg.MaxClockSkew+seenMargin))
	if err != nil {
		return Identity{}, err
	}
	if !fresh {
		b.metrics.replays.Inc()
		return Identity{}, refuse(http.StatusUnauthorized, "replayed", "proof has already been used")
	}
	return b.callSTS(ctx, cp)
}

// exchangeReply is the Datadog intake-key reply shape, with Chancery's extra attributes.
type exchangeReply struct {
	Data struct {
		Type       string `json:"type"`
		ID         string `json:"id"`
		Attributes struct {
			APIKey    string    `json:"api_key"`
			Tenant    string    `json:"tenant"`
			Scopes    []string  `json:"scopes"`
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"attributes"`
	} `json:"data"`
}

func (b *Broker) serveExchange(w http.ResponseWriter, r *http.Request) {
	authz := r.Header.Get("Authorization")
	proof, ok := strings.CutPrefix(authz, "Delegated ")
	if !ok || proof == "" {
		b.metrics.exchanges.WithLabelValues("malformed").Inc()
		writeError(w, http.StatusUnauthorized, "Authorization: Delegated <proof> is required")
		return
	}
	if len(authz) > maxAuthorizationLen {
		b.metrics.exchanges.WithLabelValues("malformed").Inc()
		writeError(w, http.StatusRequestHeaderFieldsTooLarge, "proof too large")
		return
	}
	if !b.limiter.allow(r.RemoteAddr, b.now()) {
		b.metrics.exchanges.WithLabelValues("throttled").Inc()
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, "too many exchanges from this client; retry later")
		return
	}
	key, info, err := b.Exchange(r.Context(), proof)
	if err != nil {
		var ref *refusal
		if errors.As(err, &ref) {
			b.metrics.exchanges.WithLabelValues(ref.Outcome).Inc()
			b.log.Info("keybroker: exchange refused", "status", ref.Status, "reason", ref.Msg, "cause", ref.cause, "remote", r.RemoteAddr)
			if ref.Status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "5")
			}
			writeError(w, ref.Status, ref.Msg)
			return
		}
		b.metrics.exchanges.WithLabelValues("internal_error").Inc()
		b.log.Error("keybroker: exchange failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	b.metrics.exchanges.WithLabelValues("issued").Inc()
	var reply exchangeReply
	reply.Data.Type = "api_key"
	reply.Data.ID = info.ID
	reply.Data.Attributes.APIKey = key.Reveal()
	reply.Data.Attributes.Tenant = info.Tenant
	reply.Data.Attributes.Scopes = info.Scopes
	reply.Data.Attributes.ExpiresAt = info.ExpiresAt
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, reply)
}

// serveSelf tells a key's holder what the key is: tenant, identity, scopes, expiry.
func (b *Broker) serveSelf(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		key = r.Header.Get("Dd-Api-Key")
	}
	info, err := b.Introspect(r.Context(), key)
	if errors.Is(err, ErrUnknownKey) {
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	if err != nil {
		b.log.Error("keybroker: introspect", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers in the JSON:API error shape Datadog clients understand.
func writeError(w http.ResponseWriter, status int, title string) {
	type apiError struct {
		Status string `json:"status"`
		Title  string `json:"title"`
	}
	writeJSON(w, status, struct {
		Errors []apiError `json:"errors"`
	}{[]apiError{{Status: fmt.Sprint(status), Title: title}}})
}
