package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/chancery/chancery/config"
	"github.com/chancery/chancery/server"
)

func newServeCmd(c *cli) *cobra.Command {
	var (
		dev                             bool
		listen, stateDir, level, format string
	)
	cmd := &cobra.Command{
		Use:     "serve",
		Short:   "Run the Chancery server (every configured capability in one process)",
		GroupID: "server",
		Long: `Serve runs Chancery's HTTP API with every capability the configuration enables,
plus /healthz (liveness), /readyz (dependencies up) and /metrics (Prometheus).

Settings come from the --config file, then CHANCERY_* environment variables, then
these flags. On SIGINT or SIGTERM the server stops accepting connections, lets
in-flight requests finish (up to shutdown_timeout) and exits 0.

--dev is the zero-setup mode: embedded state in ./.chancery (created 0700) unless
--state-dir or state_dir says otherwise.`,
		Example: `  # Zero setup, loopback only
  chancery serve --dev

  # With a configuration file, JSON logs for a collector
  chancery serve --config /etc/chancery/chancery.yaml --log-format json

  # Any free port (the address is logged)
  chancery serve --dev --listen 127.0.0.1:0`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			flags := cmd.Flags()
			if flags.Changed("listen") {
				cfg.Listen = listen
			}
			if flags.Changed("state-dir") {
				cfg.StateDir = stateDir
			}
			if flags.Changed("log-level") {
				cfg.Log.Level = level
			}
			if flags.Changed("log-format") {
				cfg.Log.Format = format
			}
			if dev && cfg.StateDir == "" {
				cfg.StateDir = config.DefaultDevStateDir
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration: %w", err)
			}
			return c.serve(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dev, "dev", false, "zero-setup mode: embedded state in ./"+config.DefaultDevStateDir)
	f.StringVar(&listen, "listen", config.DefaultListen, "API address, host:port")
	f.StringVar(&stateDir, "state-dir", "", "directory for embedded state (created 0700)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&format, "log-format", "text", "log format: text or json")
	return cmd
}

// serve runs the server until SIGINT or SIGTERM.
func (c *cli) serve(ctx context.Context, cfg config.Config) error {
	log, err := newLogger(c.stderr, cfg.Log)
	if err != nil {
		return err
	}
	srv, err := server.FromConfig(ctx, cfg, log, c.extraCapabilities...)
	if err != nil {
		return err
	}
	if _, err := srv.Listen(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return srv.Serve(ctx)
}

// newLogger builds the process logger on w (stderr) from the log settings.
func newLogger(w io.Writer, cfg config.Log) (*slog.Logger, error) {
	level, err := config.ParseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
