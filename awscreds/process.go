package awscreds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"time"
)

// maxProcessOutput bounds what is read of a credential_process's standard output.
const maxProcessOutput = 64 << 10

// Process is a Provider that runs an external command (the shared config's
// credential_process) and reads credentials from its standard output, in the JSON
// format the SDKs define:
//
//	{"Version": 1, "AccessKeyId": "…", "SecretAccessKey": "…", "SessionToken": "…", "Expiration": "RFC 3339"}
//
// The command runs through the shell, as in the SDKs. Its output is bounded and its
// run time is limited; its standard error is never put into an error, since it is
// another program's free text that may hold secrets.
type Process struct {
	Command string
	// Timeout defaults to one minute.
	Timeout time.Duration
	// Stderr receives the command's standard error; nil discards it.
	Stderr io.Writer
}

// Retrieve runs the command once.
func (p *Process) Retrieve(ctx context.Context) (Credentials, error) {
	if p.Command == "" {
		return Credentials{}, fmt.Errorf("credential_process: no command: %w", ErrNotConfigured)
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(ctx, "cmd.exe", "/C", p.Command)
	} else {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", p.Command)
	}
	out := &limitedBuffer{limit: maxProcessOutput}
	cmd.Stdout = out
	cmd.Stderr = p.Stderr
	// A grandchild holding the pipes open must not keep us waiting past the timeout.
	cmd.WaitDelay = time.Second

	// The command line itself is configuration, not a secret, but it may embed one
	// (a token argument), so errors name the profile setting rather than quote it.
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Credentials{}, fmt.Errorf("credential_process: %w", ctx.Err())
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return Credentials{}, fmt.Errorf("credential_process: command exited with status %d", exit.ExitCode())
		}
		return Credentials{}, fmt.Errorf("credential_process: running command: %w", err)
	}
	if out.overflow {
		return Credentials{}, fmt.Errorf("credential_process: output larger than %d bytes", maxProcessOutput)
	}
	return parseProcessOutput(out.Bytes())
}

// processOutput is the credential_process JSON document.
type processOutput struct {
	Version         int
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      *time.Time
}

// parseProcessOutput parses and validates a credential_process document (untrusted).
func parseProcessOutput(data []byte) (Credentials, error) {
	var doc processOutput
	if err := json.Unmarshal(data, &doc); err != nil {
		return Credentials{}, fmt.Errorf("credential_process: output is not a JSON credentials document: %w", jsonSyntaxOnly(err))
	}
	if doc.Version != 1 {
		return Credentials{}, fmt.Errorf("credential_process: unsupported Version %d, want 1", doc.Version)
	}
	if doc.AccessKeyID == "" || doc.SecretAccessKey == "" {
		return Credentials{}, errors.New("credential_process: output lacks AccessKeyId or SecretAccessKey")
	}
	return documentCredentials(doc.AccessKeyID, doc.SecretAccessKey, doc.SessionToken, doc.Expiration, SourceProcess), nil
}

// limitedBuffer keeps the first limit bytes written to it and notes any overflow; it
// keeps accepting writes so that the child never blocks on a full pipe. It does not
// embed bytes.Buffer: its ReadFrom would let io.Copy bypass the limit.
type limitedBuffer struct {
	buf      bytes.Buffer
	limit    int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.buf.Len(); len(p) > room {
		b.overflow = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) Bytes() []byte { return b.buf.Bytes() }
