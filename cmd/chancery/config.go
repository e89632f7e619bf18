package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chancery/chancery/config"
)

func newConfigCmd(c *cli) *cobra.Command {
	group := &cobra.Command{
		Use:     "config",
		Short:   "Inspect and check configuration files",
		GroupID: "server",
		Args:    groupArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	group.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Report every problem in a configuration file; exit 1 if there is any",
		Long: `Check loads FILE the way serve would (strict YAML, then CHANCERY_* environment
overrides) and validates the result. It prints every problem found, one a line,
each naming the file and line or the setting, and exits 1 if there is any.`,
		Example: `  chancery config check /etc/chancery/chancery.yaml
  chancery config check chancery.example.yaml`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			cfg, loadErr := config.Load(path, c.environ)
			problems := config.Problems(loadErr)
			if loadErr == nil || !isReadError(loadErr) {
				problems = append(problems, config.Problems(cfg.Validate())...)
			}
			for _, p := range problems {
				fmt.Fprintln(c.stderr, p)
			}
			if len(problems) > 0 {
				return reportedError{fmt.Errorf("%s: %d problem(s)", path, len(problems))}
			}
			_, err := fmt.Fprintf(c.stdout, "%s: ok\n", path)
			return err
		},
	})
	return group
}

// loadConfig loads the configuration for a command that runs with it: the --config
// file if any, then the environment.
func (c *cli) loadConfig() (config.Config, error) {
	return config.Load(c.configPath, c.environ)
}

// isReadError reports whether Load failed to read the file at all, in which case
// validating the defaults would only add noise.
func isReadError(err error) bool {
	var readErr *config.ReadError
	return errors.As(err, &readErr)
}
