package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/chancery/chancery/config"
	"github.com/chancery/chancery/keybroker"
	"github.com/chancery/chancery/store"
)

// FromConfig builds the server cfg describes: it prepares the state directory, opens
// the store if a configured capability keeps state, and builds each configured
// capability. extra capabilities are mounted beside them. cfg must be valid.
func FromConfig(ctx context.Context, cfg config.Config, log *slog.Logger, extra ...Capability) (*Server, error) {
	if cfg.StateDir != "" {
		if err := PrepareStateDir(cfg.StateDir); err != nil {
			return nil, err
		}
	}
	reg := NewRegistry()
	var (
		caps    []Capability
		closers []io.Closer
	)
	fail := func(err error) (*Server, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].Close()
		}
		return nil, err
	}

	if cfg.KeyBroker != nil {
		db, err := store.Open(ctx, cfg.Store, cfg.StateDir)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, db)
		db.SetLogger(log)
		broker, err := keybroker.New(ctx, *cfg.KeyBroker, db, keybroker.Options{Logger: log, Registry: reg})
		if err != nil {
			return fail(fmt.Errorf("keybroker: %w", err))
		}
		caps = append(caps, broker)
	}

	srv, err := New(Options{
		Listen:          cfg.Listen,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Logger:          log,
		Registry:        reg,
		Capabilities:    append(caps, extra...),
		Closers:         closers,
	})
	if err != nil {
		for _, c := range caps {
			if cl, ok := c.(Closer); ok {
				cl.Close()
			}
		}
		return fail(err)
	}
	return srv, nil
}

// closeAll closes cs in reverse order and joins their errors.
func closeAll(cs []io.Closer) error {
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		if err := cs[i].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
