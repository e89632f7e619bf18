package sigv4_test

import (
	"errors"
	"testing"

	"github.com/chancery/chancery/sigv4"
)

func TestInferScope(t *testing.T) {
	tests := []struct {
		host, service, region string
	}{
		{"sqs.eu-west-1.amazonaws.com", "sqs", "eu-west-1"},
		{"sts.us-east-1.amazonaws.com:443", "sts", "us-east-1"},
		{"SQS.EU-WEST-1.AMAZONAWS.COM.", "sqs", "eu-west-1"},
		{"iam.amazonaws.com", "iam", "us-east-1"},
		{"sts.amazonaws.com", "sts", "us-east-1"},
		{"s3.amazonaws.com", "s3", "us-east-1"},
		{"sts-fips.us-east-1.amazonaws.com", "sts", "us-east-1"},
		{"s3-fips.us-gov-west-1.amazonaws.com", "s3", "us-gov-west-1"},
		{"s3.dualstack.us-east-1.amazonaws.com", "s3", "us-east-1"},
		{"s3-fips.dualstack.us-east-2.amazonaws.com", "s3", "us-east-2"},
		{"bucket.s3.dualstack.ap-south-1.amazonaws.com", "s3", "ap-south-1"},
		{"sqs.us-east-1.api.aws", "sqs", "us-east-1"},
		{"sqs.cn-north-1.amazonaws.com.cn", "sqs", "cn-north-1"},
		{"s3.cn-northwest-1.amazonaws.com.cn", "s3", "cn-northwest-1"},
		{"iam.amazonaws.com.cn", "iam", "cn-north-1"},
		{"sts.us-gov-west-1.amazonaws.com", "sts", "us-gov-west-1"},
		{"iam.us-gov.amazonaws.com", "iam", "us-gov-west-1"},
		{"vpce-0a1b2c3d-e4f5.sqs.us-east-1.vpce.amazonaws.com", "sqs", "us-east-1"},
		{"vpce-0a1b2c3d-e4f5-us-east-1a.sts.us-east-1.vpce.amazonaws.com", "sts", "us-east-1"},
		{"bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com", "s3", "us-east-1"},
		{"my.bucket.s3.us-west-2.amazonaws.com", "s3", "us-west-2"},
		{"bucket.s3-us-west-2.amazonaws.com", "s3", "us-west-2"},
		{"bucket.s3.amazonaws.com", "s3", "us-east-1"},
		{"s3-external-1.amazonaws.com", "s3", "us-east-1"},
		{"ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com", "s3", "eu-west-1"},
		{"123456789012.s3-control.us-west-2.amazonaws.com", "s3", "us-west-2"},
		{"aps-workspaces.us-east-1.amazonaws.com", "aps", "us-east-1"},
		{"abc123.execute-api.eu-central-1.amazonaws.com", "execute-api", "eu-central-1"},
		{"search-logs-abc123.us-east-1.es.amazonaws.com", "es", "us-east-1"}, // region before service
		{"runtime.sagemaker.us-east-1.amazonaws.com", "sagemaker", "us-east-1"},
		{"streams.dynamodb.eu-west-1.amazonaws.com", "dynamodb", "eu-west-1"},
		{"email.us-east-1.amazonaws.com", "ses", "us-east-1"},
		{"kms.us-iso-east-1.c2s.ic.gov", "kms", "us-iso-east-1"},
		{"xyz.lambda-url.us-east-1.on.aws", "lambda", "us-east-1"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			svc, region, err := sigv4.InferScope(tt.host)
			if err != nil || svc != tt.service || region != tt.region {
				t.Errorf("InferScope(%q) = %q, %q, %v; want %q, %q", tt.host, svc, region, err, tt.service, tt.region)
			}
		})
	}
}

func TestInferScopeRejects(t *testing.T) {
	tests := []struct {
		host   string
		notAWS bool
	}{
		{"", true},
		{":", true},
		{"localhost", true},
		{"localhost:8080", true},
		{"127.0.0.1:9000", true},
		{"[::1]:443", true},
		{"example.com", true},
		{"amazonaws.com", true},
		{".amazonaws.com", true},
		{"notamazonaws.com", true},
		{"amazonaws.com.evil.example", true},
		{"us-east-1.amazonaws.com", false},
		{"vpce-0a1b.vpce.amazonaws.com", false},
		{"..amazonaws.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			svc, region, err := sigv4.InferScope(tt.host)
			if err == nil {
				t.Fatalf("InferScope(%q) = %q, %q; want an error", tt.host, svc, region)
			}
			if errors.Is(err, sigv4.ErrNotAWSEndpoint) != tt.notAWS {
				t.Errorf("InferScope(%q) error %v: wraps ErrNotAWSEndpoint = %v, want %v", tt.host, err, !tt.notAWS, tt.notAWS)
			}
		})
	}
}

func FuzzInferScope(f *testing.F) {
	for _, s := range []string{"sqs.eu-west-1.amazonaws.com", "a.b.vpce.amazonaws.com", "[::1]:1", ".amazonaws.com.cn", "s3-.amazonaws.com", "x.dualstack.amazonaws.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		svc, region, err := sigv4.InferScope(host)
		if err == nil && (svc == "" || region == "") {
			t.Fatalf("InferScope(%q) = %q, %q with no error", host, svc, region)
		}
	})
}
