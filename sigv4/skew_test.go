package sigv4_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/chancery/chancery/sigv4"
)

func TestClockSkew(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	date := func(d time.Duration) http.Header {
		return http.Header{"Date": {now.Add(d).Format(http.TimeFormat)}}
	}
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   time.Duration
		ok     bool
	}{
		{"S3 ServerTime wins", 403, date(time.Hour), "<Error><Code>RequestTimeTooSkewed</Code><ServerTime>2026-11-23T12:30:00Z</ServerTime></Error>", 30 * time.Minute, true},
		{"S3 Date header", 403, date(-40 * time.Minute), "<Code>RequestTimeTooSkewed</Code>", -40 * time.Minute, true},
		{"at the cap, ahead", 403, date(sigv4.MaxClockSkew), "<Code>RequestTimeTooSkewed</Code>", sigv4.MaxClockSkew, true},
		{"at the cap, behind", 403, date(-sigv4.MaxClockSkew), "<Code>RequestTimeTooSkewed</Code>", -sigv4.MaxClockSkew, true},
		{"past the cap, ahead", 403, date(sigv4.MaxClockSkew + time.Second), "<Code>RequestTimeTooSkewed</Code>", 0, false},
		{"past the cap, behind", 403, date(-2 * time.Hour), "<Code>RequestTimeTooSkewed</Code>", 0, false},
		{"ServerTime years ahead", 403, date(0), "<Code>RequestTimeTooSkewed</Code><ServerTime>2036-11-23T12:00:00Z</ServerTime>", 0, false},
		{"STS expired", 403, date(20 * time.Minute), "<Code>SignatureDoesNotMatch</Code><Message>Signature expired: 20261123T120000Z is now earlier than 20261123T121500Z</Message>", 20 * time.Minute, true},
		{"query API", 400, date(time.Hour), "<Code>RequestExpired</Code>", time.Hour, true},
		{"JSON API", 400, date(time.Hour), `{"__type":"InvalidSignatureException","message":"Signature not yet current: 20261123T120000Z is still later than 20261123T110500Z"}`, time.Hour, true},
		{"other 403", 403, date(time.Hour), "<Code>AccessDenied</Code>", 0, false},
		{"success", 200, date(time.Hour), "RequestTimeTooSkewed", 0, false},
		{"no time", 403, http.Header{}, "RequestTimeTooSkewed", 0, false},
		{"bad ServerTime, bad Date", 403, http.Header{"Date": {"yesterday"}}, "RequestTimeTooSkewed<ServerTime>soon</ServerTime>", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sigv4.ClockSkew(&http.Response{StatusCode: tt.status, Header: tt.header}, []byte(tt.body), now)
			if ok != tt.ok || got != tt.want {
				t.Errorf("ClockSkew = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzClockSkew(f *testing.F) {
	f.Add(403, "Mon, 02 Jan 2006 15:04:05 GMT", "<Code>RequestTimeTooSkewed</Code><ServerTime>2006-01-02T15:04:05Z</ServerTime>")
	f.Add(400, "", "RequestExpired<ServerTime></ServerTime")
	f.Fuzz(func(t *testing.T, status int, date, body string) {
		skew, ok := sigv4.ClockSkew(&http.Response{StatusCode: status, Header: http.Header{"Date": {date}}}, []byte(body), time.Unix(0, 0))
		if skew.Abs() > sigv4.MaxClockSkew || (!ok && skew != 0) {
			t.Errorf("ClockSkew = %v, %v: outside ±%v or a value without ok", skew, ok, sigv4.MaxClockSkew)
		}
	})
}
