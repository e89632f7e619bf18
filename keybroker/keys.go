package keybroker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/chancery/chancery/store"
)

// KeyPrefix starts every API key, so that secret scanners can recognise a leaked one.
const KeyPrefix = "chy_"

// APIKey is an issued key in clear. It exists only in the exchange reply; String and
// LogValue never show it.
type APIKey string

func (k APIKey) String() string          { return "[redacted api key]" }
func (k APIKey) GoString() string        { return k.String() }
func (k APIKey) LogValue() slog.Value    { return slog.StringValue(k.String()) }
func (k APIKey) Reveal() string          { return string(k) }
func (k APIKey) hash() [sha256.Size]byte { return sha256.Sum256([]byte(k)) }

// newAPIKey returns a fresh 256-bit key.
func newAPIKey() APIKey {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return APIKey(KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:]))
}

func newKeyID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "key_" + hex.EncodeToString(b[:])
}

// KeyInfo is what the broker knows about a key, never the key itself.
type KeyInfo struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Identity is what bindings match: an assumed role as its role ARN.
	Identity string `json:"identity"`
	// Principal is the caller as STS named it (an assumed role with its session).
	Principal string `json:"principal"`
	// Rotation groups the keys of one client: a new key cuts the others of its group
	// short. It is the signed client id (within the identity) when the proof has one,
	// else the principal, so workloads sharing a role never cut each other's keys.
	Rotation  string    `json:"rotation"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Active reports whether the key may be used at now.
func (k KeyInfo) Active(now time.Time) bool {
	return k.RevokedAt.IsZero() && now.Before(k.ExpiresAt)
}

// Migrations are the keybroker's tables. Times are Unix milliseconds; updated_at is
// stamped by the database's clock so replicas can order changes.
func Migrations() []store.Migration {
	return []store.Migration{
		{Version: 1, Name: "keys", SQLite: `CREATE TABLE keybroker_keys (
			id         TEXT   PRIMARY KEY,
			hash       TEXT   NOT NULL UNIQUE,
			tenant     TEXT   NOT NULL,
			identity   TEXT   NOT NULL,
			principal  TEXT   NOT NULL,
			rotation   TEXT   NOT NULL,
			scopes     TEXT   NOT NULL,
			created_at BIGINT NOT NULL,
			expires_at BIGINT NOT NULL,
			revoked_at BIGINT,
			updated_at BIGINT NOT NULL
		)`},
		{Version: 2, Name: "keys indexes", SQLite: `CREATE INDEX keybroker_keys_identity ON keybroker_keys (identity);
			CREATE INDEX keybroker_keys_rotation ON keybroker_keys (rotation);
			CREATE INDEX keybroker_keys_revoked ON keybroker_keys (revoked_at);
			CREATE INDEX keybroker_keys_tenant ON keybroker_keys (tenant);
			CREATE INDEX keybroker_keys_updated ON keybroker_keys (updated_at);
			CREATE INDEX keybroker_keys_expires ON keybroker_keys (expires_at)`},
		{Version: 3, Name: "seen proofs", SQLite: `CREATE TABLE keybroker_seen_proofs (
			signature  TEXT   PRIMARY KEY,
			expires_at BIGINT NOT NULL
		)`},
	}
}

// Keys is the keybroker's storage: issued keys (as hashes) and seen proofs.
type Keys struct {
	db  *store.DB
	log *slog.Logger
}

// NewKeys migrates the keybroker's tables in db and returns its storage.
func NewKeys(ctx context.Context, db *store.DB) (*Keys, error) {
	if err := db.Migrate(ctx, "keybroker", Migrations()); err != nil {
		return nil, err
	}
	return &Keys{db: db, log: slog.Default()}, nil
}

// notifyChannel carries "these keys changed" between replicas. A payload names the
// column and value to reload by (see keyChange); anything else means "resync".
const notifyChannel = "chancery_keybroker"

// keyChange names a set of keys by one indexed column.
type keyChange struct {
	column string // id, hash, identity, rotation or tenant
	value  string
}

func (c keyChange) payload() string { return c.column + ":" + c.value }

func parseKeyChange(payload string) (keyChange, bool) {
	col, val, ok := strings.Cut(payload, ":")
	switch col {
	case "id", "hash", "identity", "rotation", "tenant":
		return keyChange{col, val}, ok && val != ""
	}
	return keyChange{}, false
}

// notify tells other replicas about a committed change. It is best effort: the change
// is already durable, and replicas that miss it catch up within their sync interval.
func (k *Keys) notify(ctx context.Context, c keyChange) {
	if err := k.db.Notify(ctx, notifyChannel, c.payload()); err != nil {
		k.log.Warn("keybroker: notify replicas (they resync within sync_interval)", "change", c.column, "err", err)
	}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// Issue stores a new key, cuts every other active key of its rotation group down to
// at most overlap after info.CreatedAt, and cuts the identity's oldest active keys the
// same way once it has more than maxPerIdentity (bounding clients that never reuse a
// rotation group, such as one-shot logins). All in one transaction.
func (k *Keys) Issue(ctx context.Context, info KeyInfo, key APIKey, overlap time.Duration, maxPerIdentity int) error {
	if info.Principal == "" {
		info.Principal = info.Identity
	}
	if info.Rotation == "" {
		info.Rotation = info.Principal
	}
	h := key.hash()
	cutoff := ms(info.CreatedAt.Add(overlap))
	err := k.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, k.db.Rebind(`UPDATE keybroker_keys
			SET expires_at = ?, updated_at = `+k.db.NowMillis()+`
			WHERE rotation = ? AND revoked_at IS NULL AND expires_at > ?`),
			cutoff, info.Rotation, cutoff)
		if err != nil {
			return fmt.Errorf("rotate keys of %s: %w", info.Rotation, err)
		}
		_, err = tx.ExecContext(ctx, k.db.Rebind(`INSERT INTO keybroker_keys
			(id, hash, tenant, identity, principal, rotation, scopes, created_at, expires_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, `+k.db.NowMillis()+`)`),
			info.ID, hex.EncodeToString(h[:]), info.Tenant, info.Identity, info.Principal, info.Rotation,
			strings.Join(info.Scopes, " "), ms(info.CreatedAt), ms(info.ExpiresAt))
		if err != nil {
			return fmt.Errorf("store key %s: %w", info.ID, err)
		}
		if maxPerIdentity > 0 {
			_, err = tx.ExecContext(ctx, k.db.Rebind(`UPDATE keybroker_keys
				SET expires_at = ?, updated_at = `+k.db.NowMillis()+`
				WHERE identity = ? AND revoked_at IS NULL AND expires_at > ? AND id NOT IN (
					SELECT id FROM keybroker_keys WHERE identity = ? AND revoked_at IS NULL
					ORDER BY created_at DESC, id DESC LIMIT ?)`),
				cutoff, info.Identity, cutoff, info.Identity, maxPerIdentity)
			if err != nil {
				return fmt.Errorf("cap keys of %s: %w", info.Identity, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	k.notify(ctx, keyChange{"identity", info.Identity})
	return nil
}

// KeyFilter selects keys for List and Revoke; empty fields match everything, but
// Revoke requires at least one.
type KeyFilter struct {
	ID       string
	Tenant   string
	Identity string
	// Key selects by the key itself (hashed before it reaches the database).
	Key APIKey
}

func (f KeyFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) { conds = append(conds, cond); args = append(args, v) }
	if f.ID != "" {
		add("id = ?", f.ID)
	}
	if f.Tenant != "" {
		add("tenant = ?", f.Tenant)
	}
	if f.Identity != "" {
		add("identity = ?", f.Identity)
	}
	if f.Key != "" {
		h := f.Key.hash()
		add("hash = ?", hex.EncodeToString(h[:]))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// change names the keys f selects by its most selective field, for notifications.
func (f KeyFilter) change() keyChange {
	switch {
	case f.Key != "":
		h := f.Key.hash()
		return keyChange{"hash", hex.EncodeToString(h[:])}
	case f.ID != "":
		return keyChange{"id", f.ID}
	case f.Identity != "":
		return keyChange{"identity", f.Identity}
	default:
		return keyChange{"tenant", f.Tenant}
	}
}

func (f KeyFilter) empty() bool { return f == KeyFilter{} }

const keyColumns = "hash, id, tenant, identity, principal, rotation, scopes, created_at, expires_at, revoked_at"

// scanKey reads a row of keyColumns.
func scanKey(row interface{ Scan(...any) error }) (KeyInfo, [sha256.Size]byte, error) {
	var (
		info             KeyInfo
		h                [sha256.Size]byte
		hexHash, scopes  string
		created, expires int64
		revoked          sql.NullInt64
	)
	err := row.Scan(&hexHash, &info.ID, &info.Tenant, &info.Identity, &info.Principal, &info.Rotation, &scopes, &created, &expires, &revoked)
	if err != nil {
		return info, h, err
	}
	if n, err := hex.Decode(h[:], []byte(hexHash)); err != nil || n != len(h) {
		return info, h, fmt.Errorf("key %s has a malformed hash", info.ID)
	}
	info.Scopes = strings.Fields(scopes)
	info.CreatedAt = time.UnixMilli(created).UTC()
	info.ExpiresAt = time.UnixMilli(expires).UTC()
	if revoked.Valid {
		info.RevokedAt = time.UnixMilli(revoked.Int64).UTC()
	}
	return info, h, nil
}

// query returns the keys (and their hashes) a query over keyColumns selects.
func (k *Keys) query(ctx context.Context, what, tail string, args ...any) ([]KeyInfo, [][sha256.Size]byte, error) {
	rows, err := k.db.QueryContext(ctx, k.db.Rebind("SELECT "+keyColumns+" FROM keybroker_keys"+tail), args...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var (
		infos  []KeyInfo
		hashes [][sha256.Size]byte
	)
	for rows.Next() {
		info, h, err := scanKey(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", what, err)
		}
		infos = append(infos, info)
		hashes = append(hashes, h)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	return infos, hashes, nil
}

// List returns the keys matching f, newest first.
func (k *Keys) List(ctx context.Context, f KeyFilter) ([]KeyInfo, error) {
	where, args := f.where()
	infos, _, err := k.query(ctx, "list keys", where+" ORDER BY created_at DESC, id", args...)
	return infos, err
}

// lookup returns the key whose hash is h.
func (k *Keys) lookup(ctx context.Context, h [sha256.Size]byte) (KeyInfo, bool, error) {
	infos, _, err := k.query(ctx, "look up key", " WHERE hash = ?", hex.EncodeToString(h[:]))
	if err != nil || len(infos) == 0 {
		return KeyInfo{}, false, err
	}
	return infos[0], true, nil
}

// ErrNoFilter is returned by Revoke when the filter selects nothing in particular.
var ErrNoFilter = errors.New("revoke: say which keys (id, key, identity or tenant)")

// Revoke revokes the active keys matching f and returns how many it revoked. Every
// replica stops accepting them: at once through a notification, at the latest after its
// sync interval.
func (k *Keys) Revoke(ctx context.Context, f KeyFilter) (int, error) {
	if f.empty() {
		return 0, ErrNoFilter
	}
	where, args := f.where()
	now := k.db.NowMillis()
	res, err := k.db.ExecContext(ctx, k.db.Rebind("UPDATE keybroker_keys SET revoked_at = "+now+", updated_at = "+now+where+" AND revoked_at IS NULL"), args...)
	if err != nil {
		return 0, fmt.Errorf("revoke keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("revoke keys: %w", err)
	}
	if n > 0 {
		k.notify(ctx, f.change())
	}
	return int(n), nil
}

// changed returns the keys a notification names that have not expired by now
// (expired keys are inactive whatever else is true of them).
func (k *Keys) changed(ctx context.Context, c keyChange, now time.Time) ([]KeyInfo, [][sha256.Size]byte, error) {
	// c.column is one of parseKeyChange's fixed names, never caller text.
	return k.query(ctx, "read changed keys", " WHERE "+c.column+" = ? AND expires_at > ?", c.value, ms(now))
}

// changedSince returns every key updated at or after since (database clock).
func (k *Keys) changedSince(ctx context.Context, since time.Time) ([]KeyInfo, [][sha256.Size]byte, error) {
	return k.query(ctx, "read changed keys", " WHERE updated_at >= ?", ms(since))
}

// unexpired returns every key, active or revoked, that has not expired at now.
func (k *Keys) unexpired(ctx context.Context, now time.Time) ([]KeyInfo, [][sha256.Size]byte, error) {
	return k.query(ctx, "load keys", " WHERE expires_at > ?", ms(now))
}

// markSeen records a proof's signature until expires; it reports false when the
// signature was already recorded (a replay), on this replica or any other.
func (k *Keys) markSeen(ctx context.Context, signature string, expires time.Time) (bool, error) {
	_, err := k.db.ExecContext(ctx, k.db.Rebind("INSERT INTO keybroker_seen_proofs (signature, expires_at) VALUES (?, ?)"), signature, ms(expires))
	if store.IsUniqueViolation(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record proof: %w", err)
	}
	return true, nil
}

// KeyRetention is how long expired and revoked keys stay listed before they are deleted.
const KeyRetention = 7 * 24 * time.Hour

// collect deletes proof signatures whose window has passed and keys that expired or
// were revoked more than KeyRetention ago. On PostgreSQL one replica at a time does it.
func (k *Keys) collect(ctx context.Context, now time.Time) error {
	return k.db.InTx(ctx, func(tx *sql.Tx) error {
		if k.db.Driver() == store.Postgres {
			var got bool
			if err := tx.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock(hashtext('chancery-keybroker-collect'))").Scan(&got); err != nil || !got {
				return err // another replica is collecting
			}
		}
		old := ms(now.Add(-KeyRetention))
		for _, d := range []struct {
			what, stmt string
			before     int64
		}{
			{"forget old proofs", "DELETE FROM keybroker_seen_proofs WHERE expires_at < ?", ms(now)},
			{"delete expired keys", "DELETE FROM keybroker_keys WHERE expires_at < ?", old},
			{"delete revoked keys", "DELETE FROM keybroker_keys WHERE revoked_at < ?", old},
		} {
			if _, err := tx.ExecContext(ctx, k.db.Rebind(d.stmt), d.before); err != nil {
				return fmt.Errorf("%s: %w", d.what, err)
			}
		}
		return nil
	})
}
