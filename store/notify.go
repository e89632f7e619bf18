package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Resync is delivered to a subscriber when notifications may have been lost (the
// PostgreSQL listener reconnected): the subscriber should reload what it caches.
const Resync = "\x00resync"

// Notify tells every replica subscribed to channel that something changed. On
// PostgreSQL it is a NOTIFY (delivered when the sending transaction commits; use it
// after the change is committed); on SQLite it reaches this process's subscribers.
func (db *DB) Notify(ctx context.Context, channel, payload string) error {
	if db.driver == Postgres {
		if _, err := db.ExecContext(ctx, "SELECT pg_notify($1, $2)", channel, payload); err != nil {
			return fmt.Errorf("notify %s: %w", channel, err)
		}
		return nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, ch := range db.subs[channel] {
		select {
		case ch <- payload:
		default:
			// A subscriber that fell behind gets a resync instead of blocking the writer.
			select {
			case <-ch:
			default:
			}
			ch <- Resync
		}
	}
	return nil
}

// Subscribe delivers the payloads notified on channel until ctx is done, when the
// returned channel is closed. On PostgreSQL a dedicated connection LISTENs, and
// reconnects with capped, jittered backoff; after a reconnect Resync is delivered.
func (db *DB) Subscribe(ctx context.Context, channel string) (<-chan string, error) {
	ch := make(chan string, 64)
	if db.driver != Postgres {
		db.mu.Lock()
		defer db.mu.Unlock()
		if db.closed {
			return nil, errors.New("subscribe: database closed")
		}
		db.subs[channel] = append(db.subs[channel], ch)
		go func() {
			<-ctx.Done()
			db.unsubscribe(channel, ch)
		}()
		return ch, nil
	}
	conn, err := db.listen(ctx, channel)
	if err != nil {
		return nil, err
	}
	go db.pump(ctx, channel, conn, ch)
	return ch, nil
}

func (db *DB) unsubscribe(channel string, ch chan string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	subs := db.subs[channel]
	for i, c := range subs {
		if c == ch {
			db.subs[channel] = append(subs[:i], subs[i+1:]...)
			close(ch)
			return
		}
	}
}

func (db *DB) listen(ctx context.Context, channel string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, db.dsn)
	if err != nil {
		return nil, fmt.Errorf("listen %s: connect: %w", channel, err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen %s: %w", channel, err)
	}
	return conn, nil
}

// pump forwards notifications from conn to ch, reconnecting when the connection fails.
func (db *DB) pump(ctx context.Context, channel string, conn *pgx.Conn, ch chan<- string) {
	defer close(ch)
	backoff := 100 * time.Millisecond
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			select {
			case ch <- n.Payload:
			case <-ctx.Done():
				conn.Close(context.Background())
				return
			}
			continue
		}
		conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		log := db.logger()
		log.Warn("store: LISTEN connection lost; reconnecting", "channel", channel, "err", err)
		for {
			if ctx.Err() != nil {
				return
			}
			jitter := time.Duration(rand.Int64N(int64(backoff)/5+1)) - backoff/10
			select {
			case <-time.After(backoff + jitter):
			case <-ctx.Done():
				return
			}
			backoff = min(backoff*2, 30*time.Second)
			if conn, err = db.listen(ctx, channel); err == nil {
				backoff = 100 * time.Millisecond
				log.Info("store: LISTEN connection restored", "channel", channel)
				break
			}
			log.Warn("store: LISTEN reconnect failed", "channel", channel, "retry_in", backoff, "err", err)
		}
		select {
		case ch <- Resync:
		case <-ctx.Done():
			conn.Close(context.Background())
			return
		}
	}
}
