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
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Identity  string    `json:"identity"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Active reports whether the key may be used at now.
func (k KeyInfo) Active(now time.Time) bool {
	return k.RevokedAt.IsZero() && now.Before(k.ExpiresAt)
}

// Migrations are the keybroker's tables. Times are Unix milliseconds.
func Migrations() []store.Migration {
	return []store.Migration{
		{Version: 1, Name: "keys", SQLite: `CREATE TABLE keybroker_keys (
			id         TEXT   PRIMARY KEY,
			hash       TEXT   NOT NULL UNIQUE,
			tenant     TEXT   NOT NULL,
			identity   TEXT   NOT NULL,
			scopes     TEXT   NOT NULL,
			created_at BIGINT NOT NULL,
			expires_at BIGINT NOT NULL,
			revoked_at BIGINT,
			updated_at BIGINT NOT NULL
		)`},
		{Version: 2, Name: "keys indexes", SQLite: `CREATE INDEX keybroker_keys_identity ON keybroker_keys (identity);
			CREATE INDEX keybroker_keys_tenant ON keybroker_keys (tenant);
			CREATE INDEX keybroker_keys_updated ON keybroker_keys (updated_at)`},
		{Version: 3, Name: "seen proofs", SQLite: `CREATE TABLE keybroker_seen_proofs (
			signature  TEXT   PRIMARY KEY,
			expires_at BIGINT NOT NULL
		)`},
	}
}

// Keys is the keybroker's storage: issued keys (as hashes) and seen proofs.
type Keys struct {
	db *store.DB
}

// NewKeys migrates the keybroker's tables in db and returns its storage.
func NewKeys(ctx context.Context, db *store.DB) (*Keys, error) {
	if err := db.Migrate(ctx, "keybroker", Migrations()); err != nil {
		return nil, err
	}
	return &Keys{db: db}, nil
}

// notifyChannel carries "the keys of this identity / tenant / id changed" between replicas.
const notifyChannel = "chancery_keybroker"

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// Issue stores a new key for identity and cuts every other active key of that identity
// down to at most overlap from now, in one transaction.
func (k *Keys) Issue(ctx context.Context, info KeyInfo, key APIKey, overlap time.Duration) error {
	h := key.hash()
	now := info.CreatedAt
	cutoff := ms(now.Add(overlap))
	err := k.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, k.db.Rebind(`UPDATE keybroker_keys
			SET expires_at = ?, updated_at = ?
			WHERE identity = ? AND revoked_at IS NULL AND expires_at > ?`),
			cutoff, ms(now), info.Identity, cutoff)
		if err != nil {
			return fmt.Errorf("rotate keys of %s: %w", info.Identity, err)
		}
		_, err = tx.ExecContext(ctx, k.db.Rebind(`INSERT INTO keybroker_keys
			(id, hash, tenant, identity, scopes, created_at, expires_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			info.ID, hex.EncodeToString(h[:]), info.Tenant, info.Identity, strings.Join(info.Scopes, " "),
			ms(info.CreatedAt), ms(info.ExpiresAt), ms(now))
		if err != nil {
			return fmt.Errorf("store key %s: %w", info.ID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return k.db.Notify(ctx, notifyChannel, "identity:"+info.Identity)
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

func (f KeyFilter) empty() bool { return f == KeyFilter{} }

const keyColumns = "id, tenant, identity, scopes, created_at, expires_at, revoked_at"

func scanKey(row interface{ Scan(...any) error }) (KeyInfo, error) {
	var (
		info             KeyInfo
		scopes           string
		created, expires int64
		revoked          sql.NullInt64
	)
	if err := row.Scan(&info.ID, &info.Tenant, &info.Identity, &scopes, &created, &expires, &revoked); err != nil {
		return info, err
	}
	info.Scopes = strings.Fields(scopes)
	info.CreatedAt = time.UnixMilli(created).UTC()
	info.ExpiresAt = time.UnixMilli(expires).UTC()
	info.RevokedAt = fromMS(revoked)
	return info, nil
}

// List returns the keys matching f, newest first.
func (k *Keys) List(ctx context.Context, f KeyFilter) ([]KeyInfo, error) {
	where, args := f.where()
	rows, err := k.db.QueryContext(ctx, k.db.Rebind("SELECT "+keyColumns+" FROM keybroker_keys"+where+" ORDER BY created_at DESC, id"), args...)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []KeyInfo
	for rows.Next() {
		info, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		out = append(out, info)
	}
	return out, rows.Err()
}

// lookup returns the key whose hash is h.
func (k *Keys) lookup(ctx context.Context, h [sha256.Size]byte) (KeyInfo, bool, error) {
	row := k.db.QueryRowContext(ctx, k.db.Rebind("SELECT "+keyColumns+" FROM keybroker_keys WHERE hash = ?"), hex.EncodeToString(h[:]))
	info, err := scanKey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return KeyInfo{}, false, nil
	}
	if err != nil {
		return KeyInfo{}, false, fmt.Errorf("look up key: %w", err)
	}
	return info, true, nil
}

// ErrNoFilter is returned by Revoke when the filter selects nothing in particular.
var ErrNoFilter = errors.New("revoke: say which keys (id, key, identity or tenant)")

// Revoke revokes the active keys matching f and returns how many it revoked. Every
// replica stops accepting them: at once through a notification, at the latest after its
// sync interval.
func (k *Keys) Revoke(ctx context.Context, f KeyFilter, now time.Time) (int, error) {
	if f.empty() {
		return 0, ErrNoFilter
	}
	where, args := f.where()
	args = append([]any{ms(now), ms(now)}, args...)
	res, err := k.db.ExecContext(ctx, k.db.Rebind("UPDATE keybroker_keys SET revoked_at = ?, updated_at = ?"+where+" AND revoked_at IS NULL"), args...)
	if err != nil {
		return 0, fmt.Errorf("revoke keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("revoke keys: %w", err)
	}
	if n > 0 {
		if err := k.db.Notify(ctx, notifyChannel, "changed"); err != nil {
			return int(n), err
		}
	}
	return int(n), nil
}

// changedSince returns every key updated at or after since, for replicas to resync.
func (k *Keys) changedSince(ctx context.Context, since time.Time) ([]KeyInfo, [][sha256.Size]byte, error) {
	rows, err := k.db.QueryContext(ctx, k.db.Rebind("SELECT hash, "+keyColumns+" FROM keybroker_keys WHERE updated_at >= ?"), ms(since))
	if err != nil {
		return nil, nil, fmt.Errorf("read changed keys: %w", err)
	}
	defer rows.Close()
	var (
		infos  []KeyInfo
		hashes [][sha256.Size]byte
	)
	for rows.Next() {
		var hexHash string
		var info KeyInfo
		var scopes string
		var created, expires int64
		var revoked sql.NullInt64
		if err := rows.Scan(&hexHash, &info.ID, &info.Tenant, &info.Identity, &scopes, &created, &expires, &revoked); err != nil {
			return nil, nil, fmt.Errorf("read changed keys: %w", err)
		}
		var h [sha256.Size]byte
		if n, err := hex.Decode(h[:], []byte(hexHash)); err != nil || n != len(h) {
			return nil, nil, fmt.Errorf("read changed keys: key %s has a malformed hash", info.ID)
		}
		info.Scopes = strings.Fields(scopes)
		info.CreatedAt, info.ExpiresAt, info.RevokedAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC(), fromMS(revoked)
		infos = append(infos, info)
		hashes = append(hashes, h)
	}
	return infos, hashes, rows.Err()
}

// markSeen records a proof's signature until expires; it reports false when the
// signature was already recorded (a replay), on this replica or any other.
func (k *Keys) markSeen(ctx context.Context, signature string, expires, now time.Time) (bool, error) {
	_, err := k.db.ExecContext(ctx, k.db.Rebind("INSERT INTO keybroker_seen_proofs (signature, expires_at) VALUES (?, ?)"), signature, ms(expires))
	if store.IsUniqueViolation(err) {
		// A row whose window has passed is not a replay of anything still valid; but a
		// proof that old is refused by the clock check anyway, so this stays a replay.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record proof: %w", err)
	}
	return true, nil
}

// forgetSeen deletes proof signatures whose window has passed.
func (k *Keys) forgetSeen(ctx context.Context, now time.Time) error {
	_, err := k.db.ExecContext(ctx, k.db.Rebind("DELETE FROM keybroker_seen_proofs WHERE expires_at < ?"), ms(now))
	return err
}
