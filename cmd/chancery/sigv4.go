package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/chancery/chancery/awscreds"
	"github.com/chancery/chancery/sigv4"
)

func newSigv4Cmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sigv4",
		Short:   "Sign requests to AWS with Signature Version 4: a signing proxy, presigned URLs",
		GroupID: "tools",
		Long: `The sigv4 commands sign HTTP requests to AWS APIs with Signature Version 4, using
the AWS credentials of this machine, found as the AWS SDKs find them:
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), the shared
config and credentials files (AWS_PROFILE), web identity (EKS), the ECS container
endpoint, EC2 IMDS.`,
		Args: groupArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newSigv4ProxyCmd(c), newSigv4PresignCmd(c))
	return cmd
}

// awsCredentials is the SDKs' default chain behind this command's own environment,
// cached so that a long-running proxy does not refetch credentials that are still valid.
func (c *cli) awsCredentials() sigv4.CredentialsProvider {
	return awscreds.NewCache(awscreds.NewChain(c.envCredentials(), awscreds.DefaultChain(awscreds.Options{})),
		awscreds.CacheOptions{Logger: slog.New(slog.NewTextHandler(c.stderr, nil))})
}

type sigv4ProxyFlags struct {
	listen, upstream, service, region, payload string
	allowRemote                                bool
	allowedHosts                               []string
	maxBody                                    int64
}

var payloadModes = map[string]sigv4.PayloadMode{
	"signed":    sigv4.PayloadSigned,
	"unsigned":  sigv4.PayloadUnsigned,
	"streaming": sigv4.PayloadStreaming,
}

func newSigv4ProxyCmd(c *cli) *cobra.Command {
	var f sigv4ProxyFlags
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run a reverse proxy that signs every request it forwards to an AWS endpoint",
		Long: `Proxy listens on --listen and forwards every request to --upstream, signed with
SigV4: programs that cannot sign (Prometheus remote write, curl, scripts) reach
AWS APIs through it. The service and region are inferred from the upstream host
(sqs.eu-west-1.amazonaws.com, aps-workspaces.us-east-1.amazonaws.com, VPC and FIPS
endpoints...); give --service and --region for any other host.

Bodies are hashed into the signature (--payload signed; bodies of unknown length
are spooled to a temporary file first). For S3, --payload unsigned or streaming
forwards uploads without spooling them. Bodies larger than --max-body are refused:
by default 10 MiB, or 5 GiB when the upstream service is S3.

Anyone who can reach the proxy acts with this machine's AWS identity, so it only
listens on a loopback address unless --allow-remote is given, and it refuses
(403) what web browsers send on behalf of a page: requests with an Origin header
or Sec-Fetch-Site cross-site or same-site, and requests whose Host is not
localhost, a loopback address or the address the connection arrived on (a page
whose name is re-bound to 127.0.0.1 sends its own name). Name the hosts clients
use to reach a remote proxy with --allowed-host. It runs until SIGINT or SIGTERM,
then finishes the requests in flight.`,
		Example: `  # Amazon Managed Prometheus remote write, for a Prometheus on this machine
  chancery sigv4 proxy --listen 127.0.0.1:8005 \
      --upstream https://aps-workspaces.us-east-1.amazonaws.com

  # Listen on the LAN, for clients that reach this machine as metrics-gw.internal
  chancery sigv4 proxy --listen 0.0.0.0:8005 --allow-remote --allowed-host metrics-gw.internal \
      --upstream https://aps-workspaces.us-east-1.amazonaws.com

  # An S3-compatible endpoint that needs the region spelled out
  chancery sigv4 proxy --listen 127.0.0.1:9000 --upstream http://minio.internal:9000 \
      --service s3 --region us-east-1 --payload unsigned`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return c.sigv4Proxy(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8005", "address to listen on")
	fl.StringVar(&f.upstream, "upstream", "", "the AWS endpoint to forward to, e.g. https://sqs.us-east-1.amazonaws.com (required)")
	fl.StringVar(&f.service, "service", "", "signing service name (default: inferred from the upstream host)")
	fl.StringVar(&f.region, "region", "", "signing region (default: inferred from the upstream host)")
	fl.StringVar(&f.payload, "payload", "signed", "how request bodies are signed: signed, unsigned or streaming (the last two S3 only)")
	fl.BoolVar(&f.allowRemote, "allow-remote", false, "allow --listen on an address other than loopback")
	fl.StringArrayVar(&f.allowedHosts, "allowed-host", nil, "a further Host header value to answer, as host (any port) or host:port; repeatable")
	fl.Int64Var(&f.maxBody, "max-body", 0, "largest request body forwarded, in bytes (default 10 MiB, 5 GiB for S3)")
	return cmd
}

// sigv4Proxy runs `chancery sigv4 proxy` until the context ends or a signal arrives.
func (c *cli) sigv4Proxy(ctx context.Context, f sigv4ProxyFlags) error {
	if f.upstream == "" {
		return usageError{errors.New("--upstream is required")}
	}
	mode, ok := payloadModes[f.payload]
	if !ok {
		return usageError{fmt.Errorf("--payload %q is not one of signed, unsigned, streaming", f.payload)}
	}
	host, _, err := net.SplitHostPort(f.listen)
	if err != nil {
		return usageError{fmt.Errorf("--listen %q: %w", f.listen, err)}
	}
	if ip := net.ParseIP(host); !f.allowRemote && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return usageError{fmt.Errorf("--listen %q is not a loopback address: anyone reaching it would act as this machine's AWS identity (--allow-remote to insist)", f.listen)}
	}
	if f.maxBody < 0 {
		return usageError{fmt.Errorf("--max-body %d is negative", f.maxBody)}
	}
	log := slog.New(slog.NewTextHandler(c.stderr, nil))
	proxy, err := sigv4.NewProxy(sigv4.ProxyConfig{
		Upstream:     f.upstream,
		Credentials:  c.awsCredentials(),
		Service:      f.service,
		Region:       f.region,
		Payload:      mode,
		MaxBodyBytes: f.maxBody,
		AllowedHosts: f.allowedHosts,
		Logger:       log,
	})
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	// No ReadTimeout or WriteTimeout: bodies stream both ways for as long as they last.
	srv := &http.Server{
		Handler:           proxy,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "upstream", f.upstream)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("sigv4 proxy: shutdown: %w", err)
	}
	return nil
}

type sigv4PresignFlags struct {
	method, service, region string
	expires                 time.Duration
}

func newSigv4PresignCmd(c *cli) *cobra.Command {
	var f sigv4PresignFlags
	cmd := &cobra.Command{
		Use:   "presign URL",
		Short: "Print a presigned URL: the request signed in its query string, valid for --expires",
		Long: `Presign signs URL in its query string with this machine's AWS credentials and
prints it: whoever holds the printed URL can make that one request (--method, GET
by default) until it expires, without credentials of their own. The body is not
signed (UNSIGNED-PAYLOAD), as S3 requires. The service and region are inferred
from the host unless given.

A URL signed with temporary credentials stops working when they expire, whatever
--expires says.`,
		Example: `  # Share an S3 object for an hour
  chancery sigv4 presign https://examplebucket.s3.eu-west-1.amazonaws.com/report.pdf --expires 1h

  # Let someone upload one object
  chancery sigv4 presign https://examplebucket.s3.amazonaws.com/upload.bin --method PUT`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.sigv4Presign(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.expires, "expires", 15*time.Minute, "how long the URL stays valid (at most 168h)")
	fl.StringVar(&f.method, "method", http.MethodGet, "HTTP method the URL is for")
	fl.StringVar(&f.service, "service", "", "signing service name (default: inferred from the host)")
	fl.StringVar(&f.region, "region", "", "signing region (default: inferred from the host)")
	return cmd
}

func (c *cli) sigv4Presign(ctx context.Context, rawURL string, f sigv4PresignFlags) error {
	if f.expires < time.Second || f.expires > sigv4.MaxPresignExpires {
		return usageError{fmt.Errorf("--expires %v is outside 1s..%v", f.expires, sigv4.MaxPresignExpires)}
	}
	opts := sigv4.PresignOptions{Method: f.method, Service: f.service, Region: f.region, Expires: f.expires}
	// Check the URL and scope before looking for credentials: a typo is a usage error.
	if _, err := sigv4.PresignURL(ctx, sigv4.StaticCredentials{AccessKeyID: "check", SecretAccessKey: "check"}, rawURL, opts); err != nil {
		return usageError{err}
	}
	u, err := sigv4.PresignURL(ctx, c.awsCredentials(), rawURL, opts)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.stdout, u)
	return err
}
