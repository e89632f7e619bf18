package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/chancery/chancery/awscreds"
	"github.com/chancery/chancery/delegatedauth"
)

func newLoginCmd(c *cli) *cobra.Command {
	login := &cobra.Command{
		Use:     "login",
		Short:   "Get an API key by proving the cloud identity this machine runs with",
		GroupID: "tools",
		Long: `Login trades the cloud identity this machine already has for a managed API key
from a Chancery server (or any broker speaking Datadog's intake-key protocol):
no long-lived key needs to be copied onto the machine.`,
		Args: groupArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	login.AddCommand(newLoginAWSCmd(c))
	return login
}

type loginAWSFlags struct {
	server, org, serverID string
	stsEndpoint, region   string
	write                 string
	watch, insecureHTTP   bool
	interval              time.Duration
}

func newLoginAWSCmd(c *cli) *cobra.Command {
	var f loginAWSFlags
	cmd := &cobra.Command{
		Use:   "aws",
		Short: "Get an API key with the AWS identity this machine runs with",
		Long: `Login aws signs an STS GetCallerIdentity request with this machine's AWS
credentials (it is not sent to AWS), and exchanges it at the server for an API key
for the tenant --org. The server forwards the signed request to STS to learn who
signed it; it never sees the credentials.

Credentials are found as the AWS SDKs find them: AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), the shared config and credentials
files (AWS_PROFILE), web identity (EKS), the ECS container endpoint, EC2 IMDS.

The proof names the server it is for in a signed header, so it cannot be replayed
at another server. --server-id defaults to the host name of --server (without the
port); it must equal the server's keybroker.server_id.

The key is printed on stdout (and nothing else is), or written with --write to a
file of mode 0600, replaced atomically. --watch keeps that file fresh (refreshing
every --interval, sooner if the key expires sooner, backing off when the server is
unreachable) until SIGINT or SIGTERM.`,
		Example: `  # Print a key for tenant acme
  chancery login aws --server https://chancery.example.com --org acme

  # Use it at once
  curl -H "DD-API-KEY: $(chancery login aws --server https://chancery.example.com --org acme)" ...

  # Keep a key file fresh for another process, using a regional STS endpoint
  chancery login aws --server https://chancery.example.com --org acme \
      --region eu-west-1 --write /run/chancery/api_key --watch

  # The server's id differs from its host name (behind a load balancer, say)
  chancery login aws --server https://lb.internal:8443 --server-id chancery-prod --org acme`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.loginAWS(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "the Chancery server's URL, e.g. https://chancery.example.com (required)")
	fl.StringVar(&f.org, "org", "", "the tenant to get a key for, sent as x-ddog-org-id (required)")
	fl.StringVar(&f.serverID, "server-id", "", "the server's keybroker.server_id (default: the host name of --server)")
	fl.StringVar(&f.stsEndpoint, "sts-endpoint", "", "STS URL the proof is signed for (default: https://sts.amazonaws.com, or the --region endpoint)")
	fl.StringVar(&f.region, "region", "", "sign for the regional STS endpoint https://sts.REGION.amazonaws.com (default: the global endpoint)")
	fl.StringVar(&f.write, "write", "", "write the key to this file (mode 0600, replaced atomically) instead of stdout")
	fl.BoolVar(&f.watch, "watch", false, "with --write: keep the file fresh until SIGINT or SIGTERM")
	fl.DurationVar(&f.interval, "interval", delegatedauth.DefaultRefreshInterval, "with --watch: how often to refresh the key")
	fl.BoolVar(&f.insecureHTTP, "insecure-http", false, "allow a plain http --server that is not on loopback")
	return cmd
}

// loginAWS runs `chancery login aws`.
func (c *cli) loginAWS(ctx context.Context, f loginAWSFlags) error {
	prover, server, err := c.loginAWSProver(f)
	if err != nil {
		return usageError{err}
	}
	exchanger := &delegatedauth.Exchanger{Server: server, Prover: prover}
	if !f.watch {
		k, err := exchanger.Key(ctx)
		if err != nil {
			return err
		}
		if f.write == "" {
			_, err := fmt.Fprintln(c.stdout, k.APIKey.Reveal())
			return err
		}
		if err := delegatedauth.WriteKeyFile(f.write, k.APIKey); err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "chancery: wrote an API key for %s to %s%s\n", f.org, f.write, expiresNote(k))
		return nil
	}
	return c.watchKey(ctx, exchanger, f)
}

// loginAWSProver checks the flags and builds the prover; its errors are usage errors.
func (c *cli) loginAWSProver(f loginAWSFlags) (*delegatedauth.AWSProver, string, error) {
	switch {
	case f.server == "":
		return nil, "", errors.New("--server is required")
	case f.org == "":
		return nil, "", errors.New("--org is required")
	case f.watch && f.write == "":
		return nil, "", errors.New("--watch needs --write FILE")
	case f.interval < time.Second:
		return nil, "", fmt.Errorf("--interval %v is shorter than a second", f.interval)
	}
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", fmt.Errorf("--server %q is not an http(s) URL", f.server)
	}
	// A proof is a bearer credential until the server spends it, and the reply is an
	// API key: plain http only where nobody can listen in.
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) && !f.insecureHTTP {
		return nil, "", fmt.Errorf("--server %s: plain http would expose the proof and the key; use https (or --insecure-http)", u.Redacted())
	}
	serverID := f.serverID
	if serverID == "" {
		serverID = u.Hostname()
	}
	// The SDK's default chain, behind this command's own environment (which tests set
	// and which is the process's otherwise), cached so --watch does not refetch
	// credentials that are still valid.
	creds := awscreds.NewCache(awscreds.NewChain(c.envCredentials(), awscreds.DefaultChain(awscreds.Options{})),
		awscreds.CacheOptions{Logger: slog.New(slog.NewTextHandler(c.stderr, nil))})
	prover := &delegatedauth.AWSProver{
		Credentials: creds,
		OrgID:       f.org,
		ServerID:    serverID,
		Region:      f.region,
		Endpoint:    f.stsEndpoint,
		// One id per run: --watch rotates its own key; separate runs keep theirs.
		ClientID: delegatedauth.NewClientID(),
	}
	if err := prover.Validate(); err != nil {
		return nil, "", err
	}
	return prover, f.server, nil
}

// envCredentials reads the AWS key variables from the command's environment.
func (c *cli) envCredentials() awscreds.Provider {
	return awscreds.ProviderFunc(func(context.Context) (awscreds.Credentials, error) {
		id, secret := c.getenv("AWS_ACCESS_KEY_ID"), c.getenv("AWS_SECRET_ACCESS_KEY")
		switch {
		case id == "" && secret == "":
			return awscreds.Credentials{}, fmt.Errorf("%w: AWS_ACCESS_KEY_ID is not set", awscreds.ErrNotConfigured)
		case id == "" || secret == "":
			return awscreds.Credentials{}, errors.New("only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set")
		}
		return awscreds.Credentials{AccessKeyID: id, SecretAccessKey: secret,
			SessionToken: c.getenv("AWS_SESSION_TOKEN"), Source: awscreds.SourceEnv}, nil
	})
}

// watchKey keeps the key file fresh until SIGINT or SIGTERM.
func (c *cli) watchKey(ctx context.Context, src delegatedauth.KeySource, f loginAWSFlags) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(c.stderr, nil))
	r := delegatedauth.NewRefresher(src, delegatedauth.RefresherOptions{
		Name:     f.org,
		Detect:   func(context.Context) bool { return true }, // asked for AWS explicitly
		Interval: f.interval,
		Logger:   log,
	})
	r.Subscribe(func(k delegatedauth.Key) {
		if k.APIKey.IsZero() {
			return
		}
		if err := delegatedauth.WriteKeyFile(f.write, k.APIKey); err != nil {
			log.Error("could not write the API key file", "error", err)
			return
		}
		log.Info("wrote a new API key", "file", f.write, "key", k)
	})
	if err := r.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted before the first key: a normal exit
		}
		return err
	}
	<-ctx.Done()
	r.Stop()
	return nil
}

// isLoopbackHost reports whether host names this machine.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func expiresNote(k delegatedauth.Key) string {
	if k.Expires.IsZero() {
		return ""
	}
	return ", valid until " + k.Expires.UTC().Format(time.RFC3339)
}
