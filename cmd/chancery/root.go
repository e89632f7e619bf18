package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chancery/chancery/server"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // the command line itself was wrong
)

// cli is everything a command may touch of the outside world, so that tests run
// commands in-process exactly as main does.
type cli struct {
	args           []string
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string

	// extraCapabilities are mounted by serve next to the configured ones; tests use it
	// to add routes (a deliberately slow one, say) to a real server.
	extraCapabilities []server.Capability

	configPath string // --config, or CHANCERY_CONFIG
}

// getenv looks a variable up in the command's environment, not the process's.
func (c *cli) getenv(name string) string {
	for _, kv := range c.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// usageError marks an error in the command line (exit 2), as opposed to a failure of
// the command (exit 1).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// groupArgs is the Args of a command that only groups subcommands: any argument is a
// mistyped subcommand.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
	}
	return nil
}

// exactArgs is cobra.ExactArgs whose error is a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func newRootCmd(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "chancery",
		Short: "Workload identity broker: trade the cloud identity you run with for credentials and secrets",
		Long: `Chancery lets a program prove who it is with the cloud identity it already runs
with, and get the credentials and secrets it needs without a long-lived key ever
being copied to its machine.

The same binary is the server (chancery serve), its clients and its tools.`,
		Example: `  # Try it: everything in one process, state in ./.chancery
  chancery serve --dev

  # Check a configuration file before deploying it
  chancery config check chancery.yaml`,
		SilenceUsage:  true, // an error is one line, not a page of flags
		SilenceErrors: true, // run prints it, once
		Args:          groupArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetArgs(c.args)
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&c.configPath, "config", c.getenv("CHANCERY_CONFIG"),
		"configuration file (YAML; see chancery.example.yaml); env CHANCERY_CONFIG")

	root.AddGroup(
		&cobra.Group{ID: "server", Title: "Server:"},
		&cobra.Group{ID: "tools", Title: "Clients and tools:"},
	)
	// Command groups, one file each. A new group adds its constructor here.
	for _, cmd := range []*cobra.Command{
		newServeCmd(c),
		newConfigCmd(c),
		newVersionCmd(c),
		newLoginCmd(c),
		newSigv4Cmd(c),
		newKeysCmd(c),
	} {
		root.AddCommand(cmd)
	}
	return root
}

// run executes the command line in c and returns the process exit code. Errors are
// printed once, on one line each, without a stack trace.
func run(ctx context.Context, c *cli) int {
	root := newRootCmd(c)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var usage usageError
	// cobra reports a mistyped subcommand of a group as a plain error.
	if errors.As(err, &usage) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(c.stderr, "chancery: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	}
	var reported reportedError
	if !errors.As(err, &reported) {
		fmt.Fprintf(c.stderr, "chancery: %v\n", err)
	}
	return exitError
}

// reportedError is a failure the command has already described on stderr.
type reportedError struct{ error }
