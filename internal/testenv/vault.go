package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// VaultBinEnv names a Vault binary to use when none is on PATH.
const VaultBinEnv = "CHANCERY_VAULT_BIN"

// VaultServer is a running `vault server -dev`: in-memory, unsealed, with a root token.
type VaultServer struct {
	Addr  string // "http://127.0.0.1:PORT"
	Token string // the root token

	proc *process
}

// Output returns the tail of Vault's log.
func (v *VaultServer) Output() string { return v.proc.Output() }

// Vault starts a Vault dev server on a free loopback port, stopped by t.Cleanup. No
// package registry this project can reach ships Vault, so when no binary is on PATH or
// at $CHANCERY_VAULT_BIN the test is skipped loudly — even under CHANCERY_TEST_REQUIRE=all.
func Vault(t testing.TB) *VaultServer {
	t.Helper()
	bin := os.Getenv(VaultBinEnv)
	if bin == "" {
		bin, _ = exec.LookPath("vault")
	}
	if bin == "" {
		t.Skipf("testenv: SKIPPING VAULT TEST: no vault binary on PATH or at $%s; "+
			"this skip is allowed even with %s=all, run it where Vault is installed", VaultBinEnv, RequireEnv)
	}
	token := make([]byte, 16)
	rand.Read(token)
	v := &VaultServer{Token: "root-" + hex.EncodeToString(token)}
	startWithPortRetry(t, "vault", func(port int) error {
		v.Addr = "http://127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(bin, "server", "-dev",
			"-dev-listen-address=127.0.0.1:"+strconv.Itoa(port),
			"-dev-root-token-id="+v.Token, "-dev-no-store-token")
		cmd.Env = append(os.Environ(), "VAULT_DISABLE_MLOCK=true", "HOME="+t.TempDir())
		p, err := start(t, "vault", cmd, 60*time.Second, func(ctx context.Context) error {
			return httpOK(ctx, v.Addr+"/v1/sys/health")
		})
		if err != nil {
			return err
		}
		v.proc = p
		return nil
	})
	return v
}
