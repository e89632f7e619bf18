package sigv4

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrNotAWSEndpoint is wrapped by InferScope for a host that is not an AWS endpoint, so
// a caller knows to fall back to a configured service and region.
var ErrNotAWSEndpoint = errors.New("not an AWS endpoint")

// awsSuffixes are the DNS suffixes of AWS partitions, with the region a global endpoint
// of that partition signs for.
var awsSuffixes = []struct{ suffix, globalRegion string }{
	{".amazonaws.com.cn", "cn-north-1"},
	{".api.amazonwebservices.com.cn", "cn-north-1"},
	{".amazonaws.com", "us-east-1"},
	{".api.aws", "us-east-1"},
	{".on.aws", "us-east-1"},
	{".c2s.ic.gov", "us-iso-east-1"},
	{".sc2s.sgov.gov", "us-isob-east-1"},
}

// signingNames maps endpoint prefixes to the service name they sign with, where the
// two differ.
var signingNames = map[string]string{
	"aps-workspaces":    "aps",
	"email":             "ses",
	"s3-control":        "s3",
	"s3-accesspoint":    "s3",
	"s3-external-1":     "s3",
	"s3-object-lambda":  "s3-object-lambda",
	"lambda-url":        "lambda",
	"streams.dynamodb":  "dynamodb",
	"runtime.sagemaker": "sagemaker",
	"runtime.lex":       "lex",
	"data.iot":          "iotdata",
	"data-ats.iot":      "iotdata",
	"monitoring":        "monitoring",
}

// InferScope returns the signing service and region of an AWS endpoint host (a port,
// if any, is ignored). It understands every endpoint form in use:
//
//	sqs.eu-west-1.amazonaws.com                       regional
//	iam.amazonaws.com, sts.amazonaws.com              global (us-east-1, cn-north-1 in China)
//	sts-fips.us-east-1.amazonaws.com                  FIPS
//	s3.dualstack.us-east-1.amazonaws.com              dual-stack; also sqs.us-east-1.api.aws
//	sqs.cn-north-1.amazonaws.com.cn                   China
//	sts.us-gov-west-1.amazonaws.com                   GovCloud
//	vpce-0a1b-c2d3.sqs.us-east-1.vpce.amazonaws.com   VPC interface endpoints
//	bucket.s3.us-west-2.amazonaws.com, bucket.s3-us-west-2.amazonaws.com  S3 virtual-hosted
//	aps-workspaces.us-east-1.amazonaws.com            names that sign differently (aps)
//
// A host that is not under an AWS domain gives an error wrapping ErrNotAWSEndpoint; a
// malformed one (empty, an IP address, no service label) an error. It never panics.
func InferScope(host string) (service, region string, err error) {
	h := strings.ToLower(strings.TrimSuffix(hostOnly(host), "."))
	if h == "" {
		return "", "", fmt.Errorf("sigv4: cannot infer service and region from empty host: %w", ErrNotAWSEndpoint)
	}
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return "", "", fmt.Errorf("sigv4: cannot infer service and region from IP address %q: %w", host, ErrNotAWSEndpoint)
	}
	var prefix, globalRegion string
	for _, s := range awsSuffixes {
		if strings.HasSuffix(h, s.suffix) {
			prefix, globalRegion = h[:len(h)-len(s.suffix)], s.globalRegion
			break
		}
	}
	if prefix == "" {
		return "", "", fmt.Errorf("sigv4: cannot infer service and region from host %q: %w", host, ErrNotAWSEndpoint)
	}
	labels := strings.Split(prefix, ".")
	if labels[len(labels)-1] == "vpce" {
		labels = labels[:len(labels)-1]
	}
	if len(labels) == 0 {
		return "", "", fmt.Errorf("sigv4: cannot find the service in host %q", host)
	}
	// The region is the rightmost label that looks like one; the service is just left of
	// it (past a "dualstack" label), or the label after it. Without a region the
	// endpoint is global.
	ri := -1
	for i := len(labels) - 1; i >= 0; i-- {
		if isRegion(labels[i]) {
			ri = i
			break
		}
	}
	var svc string
	switch {
	case ri >= 0 && ri < len(labels)-1:
		// The region comes first in OpenSearch domains: search-d.us-east-1.es.amazonaws.com.
		svc, region = labels[len(labels)-1], labels[ri]
	case ri > 0:
		region = labels[ri]
		si := ri - 1
		if labels[si] == "dualstack" && si > 0 {
			si--
		}
		svc = labels[si]
		// Two-label names such as runtime.sagemaker or streams.dynamodb.
		if si > 0 {
			if name, ok := signingNames[labels[si-1]+"."+svc]; ok {
				return name, region, nil
			}
		}
	case ri == 0:
		return "", "", fmt.Errorf("sigv4: host %q names region %q but no service", host, labels[0])
	default:
		svc, region = labels[len(labels)-1], globalRegion
		if svc == "dualstack" && len(labels) > 1 {
			svc = labels[len(labels)-2]
		}
		// iam.us-gov.amazonaws.com and friends: partition-global in GovCloud.
		if svc == "us-gov" && len(labels) > 1 {
			svc, region = labels[len(labels)-2], "us-gov-west-1"
		}
		// Legacy S3 endpoints with the region after a dash: s3-us-west-2, s3-fips-us-gov-west-1.
		if rest, ok := strings.CutPrefix(svc, "s3-"); ok {
			rest = strings.TrimPrefix(rest, "fips-")
			if isRegion(rest) {
				return "s3", rest, nil
			}
		}
	}
	svc = strings.TrimSuffix(svc, "-fips")
	if name, ok := signingNames[svc]; ok {
		svc = name
	}
	if svc == "" || strings.HasPrefix(svc, "vpce-") || isRegion(svc) {
		return "", "", fmt.Errorf("sigv4: cannot find the service in host %q", host)
	}
	return svc, region, nil
}

// hostOnly strips a port from host[:port] or [v6]:port.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// isRegion reports whether s looks like an AWS region: us-east-1, eu-central-2,
// us-gov-west-1, cn-northwest-1, us-iso-east-1, us-isob-east-1...
func isRegion(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || len(parts) > 4 || len(parts[0]) != 2 || !isLetters(parts[0]) {
		return false
	}
	if len(parts) == 4 {
		switch parts[1] {
		case "gov", "iso", "isob", "isoe", "isof":
		default:
			return false
		}
	}
	dir, num := parts[len(parts)-2], parts[len(parts)-1]
	if !isLetters(dir) || num == "" || len(num) > 2 {
		return false
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return false
		}
	}
	return true
}

func isLetters(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}
