package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/chancery/chancery/server"
)

func newVersionCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, VCS revision and Go version of this binary",
		Example: "  chancery version",
		GroupID: "tools",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			version, revision := server.BuildVersion()
			_, err := fmt.Fprintf(c.stdout, "chancery %s (revision %s, %s %s/%s)\n",
				version, revision, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
