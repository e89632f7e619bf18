package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chancery/chancery/config"
	"github.com/chancery/chancery/keybroker"
	"github.com/chancery/chancery/store"
)

func newKeysCmd(c *cli) *cobra.Command {
	var stateDir string
	group := &cobra.Command{
		Use:     "keys",
		Short:   "List and revoke the API keys the keybroker has issued",
		GroupID: "server",
		Long: `The keys commands work on the keybroker's database directly (the store section of
--config, or the SQLite file under --state-dir), so they need no running server and no
admin token: access to the database is the authority.

A revocation reaches every running replica at once through a notification (PostgreSQL),
and at the latest after keybroker.sync_interval (SQLite, or a lost notification).`,
		Args: groupArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	group.PersistentFlags().StringVar(&stateDir, "state-dir", "", "state directory holding the SQLite database (overrides state_dir)")

	var (
		filter keybroker.KeyFilter
		asJSON bool
		all    bool
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List issued keys (never the keys themselves), newest first",
		Example: `  chancery keys list --config /etc/chancery/chancery.yaml
  chancery keys list --state-dir .chancery --tenant acme
  chancery keys list --identity arn:aws:iam::123456789012:role/web --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, done, err := c.openKeys(cmd.Context(), stateDir)
			if err != nil {
				return err
			}
			defer done()
			infos, err := keys.List(cmd.Context(), filter)
			if err != nil {
				return err
			}
			now := time.Now()
			if !all {
				infos = activeOnly(infos, now)
			}
			if asJSON {
				enc := json.NewEncoder(c.stdout)
				enc.SetIndent("", "  ")
				if infos == nil {
					infos = []keybroker.KeyInfo{}
				}
				return enc.Encode(infos)
			}
			return printKeys(c.stdout, infos, now)
		},
	}
	lf := list.Flags()
	lf.StringVar(&filter.Tenant, "tenant", "", "only keys of this tenant")
	lf.StringVar(&filter.Identity, "identity", "", "only keys of this identity (role ARN)")
	lf.StringVar(&filter.ID, "id", "", "only the key with this id")
	lf.BoolVar(&all, "all", false, "include expired and revoked keys")
	lf.BoolVar(&asJSON, "json", false, "print JSON instead of a table")

	var (
		revoke   keybroker.KeyFilter
		keyStdin bool
	)
	rev := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke keys by id, by the key itself, by identity or by tenant",
		Long: `Revoke marks the selected keys revoked; they stop working on every replica. Say
which keys with at least one of --id, --key-stdin, --identity, --tenant (several
narrow the selection). The key itself is read from stdin so it never appears in a
process list or shell history.`,
		Example: `  chancery keys revoke --config chancery.yaml --id key_3f2a9c0d1e2b4a5f
  chancery keys revoke --state-dir .chancery --identity arn:aws:iam::123456789012:role/web
  chancery keys revoke --config chancery.yaml --tenant acme
  echo "$LEAKED_KEY" | chancery keys revoke --config chancery.yaml --key-stdin`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyStdin {
				line, err := bufio.NewReader(io.LimitReader(c.stdin, 4096)).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read key from stdin: %w", err)
				}
				if revoke.Key = keybroker.APIKey(strings.TrimSpace(line)); revoke.Key == "" {
					return usageError{errors.New("--key-stdin: no key on stdin")}
				}
			}
			if revoke == (keybroker.KeyFilter{}) {
				return usageError{keybroker.ErrNoFilter}
			}
			keys, done, err := c.openKeys(cmd.Context(), stateDir)
			if err != nil {
				return err
			}
			defer done()
			n, err := keys.Revoke(cmd.Context(), revoke)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "revoked %d key(s)\n", n)
			return err
		},
	}
	rf := rev.Flags()
	rf.StringVar(&revoke.ID, "id", "", "the key's id (from keys list)")
	rf.StringVar(&revoke.Identity, "identity", "", "every key of this identity (role ARN)")
	rf.StringVar(&revoke.Tenant, "tenant", "", "every key of this tenant")
	rf.BoolVar(&keyStdin, "key-stdin", false, "read the key itself from stdin")

	group.AddCommand(list, rev)
	return group
}

// openKeys opens the keybroker's storage named by the configuration.
func (c *cli) openKeys(ctx context.Context, stateDir string) (*keybroker.Keys, func(), error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	if stateDir != "" {
		cfg.StateDir = stateDir
	}
	if err := cfg.Store.Validate(); err != nil {
		return nil, nil, fmt.Errorf("invalid configuration: %w", err)
	}
	isSQLite := cfg.Store.Driver == "" || cfg.Store.Driver == store.SQLite
	if isSQLite && cfg.StateDir == "" && !filepath.IsAbs(cfg.Store.Path) {
		return nil, nil, errors.New("no database: pass --config with a store section or state_dir, or --state-dir")
	}
	if isSQLite {
		if err := checkExists(cfg); err != nil {
			return nil, nil, err
		}
	}
	db, err := store.Open(ctx, cfg.Store, cfg.StateDir)
	if err != nil {
		return nil, nil, err
	}
	keys, err := keybroker.NewKeys(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return keys, func() { db.Close() }, nil
}

// checkExists refuses to create an empty SQLite database where the user expected one.
func checkExists(cfg config.Config) error {
	path := cfg.Store.Path
	if path == "" {
		path = "chancery.db"
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(cfg.StateDir, path)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no database at %s (has the server run with this configuration?)", path)
	}
	return nil
}

func activeOnly(infos []keybroker.KeyInfo, now time.Time) []keybroker.KeyInfo {
	out := infos[:0]
	for _, k := range infos {
		if k.Active(now) {
			out = append(out, k)
		}
	}
	return out
}

func printKeys(w io.Writer, infos []keybroker.KeyInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tIDENTITY\tSCOPES\tCREATED\tEXPIRES\tSTATE")
	for _, k := range infos {
		state := "active"
		switch {
		case !k.RevokedAt.IsZero():
			state = "revoked " + k.RevokedAt.Format(time.RFC3339)
		case !now.Before(k.ExpiresAt):
			state = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Tenant, k.Identity, strings.Join(k.Scopes, ","),
			k.CreatedAt.Format(time.RFC3339), k.ExpiresAt.Format(time.RFC3339), state)
	}
	return tw.Flush()
}
