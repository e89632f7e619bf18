package sigv4

import (
	"bytes"
	"net/http"
	"time"
)

// skewMarkers are the error codes and messages with which AWS services refuse a request
// signed too far from their clock: S3's RequestTimeTooSkewed, the query APIs'
// RequestExpired and "Signature expired", JSON APIs' InvalidSignatureException.
var skewMarkers = [][]byte{
	[]byte("RequestTimeTooSkewed"),
	[]byte("RequestExpired"),
	[]byte("Signature expired"),
	[]byte("Signature not yet current"),
}

// MaxClockSkew bounds the clock skew ClockSkew reports. AWS accepts signatures up to
// 5 to 15 minutes off; a clock further out than an hour is a broken host to fix, not to
// work around, and a reply claiming it is more likely wrong or hostile: learning it
// would sign every later request for a time of the server's choosing.
const MaxClockSkew = time.Hour

// ClockSkew reports, for a reply that refused a request because of its signing time, how
// far the server's clock is ahead of now (negative: behind). body is the start of the
// reply's body (a few KiB are enough). The server time comes from S3's <ServerTime>
// element when present, else the Date header. ok is false for any other reply, and for
// a skew larger than MaxClockSkew either way.
func ClockSkew(resp *http.Response, body []byte, now time.Time) (skew time.Duration, ok bool) {
	if resp == nil || (resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest) {
		return 0, false
	}
	found := false
	for _, m := range skewMarkers {
		if bytes.Contains(body, m) {
			found = true
			break
		}
	}
	if !found {
		return 0, false
	}
	server, ok := serverTime(resp, body)
	if !ok {
		return 0, false
	}
	skew = server.Sub(now)
	if skew > MaxClockSkew || skew < -MaxClockSkew {
		return 0, false
	}
	return skew, true
}

func serverTime(resp *http.Response, body []byte) (time.Time, bool) {
	const open, closing = "<ServerTime>", "</ServerTime>"
	if i := bytes.Index(body, []byte(open)); i >= 0 {
		rest := body[i+len(open):]
		if j := bytes.Index(rest, []byte(closing)); j >= 0 && j < 64 {
			if t, err := time.Parse(time.RFC3339, string(rest[:j])); err == nil {
				return t, true
			}
		}
	}
	if d := resp.Header.Get("Date"); d != "" {
		if t, err := http.ParseTime(d); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
