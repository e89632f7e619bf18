package testenv_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"

	"github.com/chancery/chancery/internal/testenv"
)

func TestPostgresAnswersQueries(t *testing.T) {
	pg := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	dsn := pg.CreateDatabase(t, "conformance")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		t.Fatalf("query: %v", err)
	}
	if !strings.HasPrefix(version, "15.") {
		t.Fatalf("server_version = %q, want PostgreSQL 15", version)
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil || db != "conformance" {
		t.Fatalf("current_database() = %q, %v; want conformance", db, err)
	}
}

func stsClient(m *testenv.MotoServer, secret string) *sts.Client {
	return sts.New(sts.Options{
		Region:       m.Region,
		BaseEndpoint: aws.String(m.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKeyID, secret, ""),
	})
}

func TestMotoVerifiesSignatures(t *testing.T) {
	m := testenv.Moto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	out, err := stsClient(m, m.SecretAccessKey).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with the right key: %v\n%s", err, m.Output())
	}
	if want := "arn:aws:iam::" + m.AccountID + ":user/admin"; aws.ToString(out.Arn) != want {
		t.Fatalf("caller ARN = %q, want %q", aws.ToString(out.Arn), want)
	}

	_, err = stsClient(m, "wrong"+m.SecretAccessKey).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	// moto answers 403 with an error document the SDK cannot decode, so check the status.
	var respErr *smithyhttp.ResponseError
	if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != 403 {
		t.Fatalf("GetCallerIdentity with a wrong secret: err = %v, want HTTP 403", err)
	}
}

func TestVaultReportsHealthy(t *testing.T) {
	v := testenv.Vault(t)
	cfg := vault.DefaultConfig()
	cfg.Address = v.Addr
	client, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client.SetToken(v.Token)
	health, err := client.Sys().Health()
	if err != nil {
		t.Fatalf("sys/health: %v", err)
	}
	if !health.Initialized || health.Sealed {
		t.Fatalf("sys/health = %+v, want initialized and unsealed", health)
	}
}

func TestRequireSkipsOrFails(t *testing.T) {
	if testenv.Require(t, "sh") == "" {
		t.Fatal("Require(sh) returned no path")
	}
}
