package awscreds

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseINI(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    iniSections
		wantErr string
	}{
		{
			name: "profiles and comments",
			in:   "\ufeff# leading comment\n[default]\naws_access_key_id = AKID\n; other comment\nAWS_Secret_Access_Key=sek=rit\n\n[profile dev]\nrole_arn = arn:aws:iam::1:role/r # trailing\nregion=eu-west-1;not-a-comment\n",
			want: iniSections{
				"default":     {"aws_access_key_id": "AKID", "aws_secret_access_key": "sek=rit"},
				"profile dev": {"role_arn": "arn:aws:iam::1:role/r", "region": "eu-west-1;not-a-comment"},
			},
		},
		{
			name: "sub-properties skipped",
			in:   "[profile x]\ns3 =\n  max_concurrent_requests = 10\n  addressing_style = path\nregion = us-east-1\n",
			want: iniSections{"profile x": {"s3": "", "region": "us-east-1"}},
		},
		{
			name: "repeated sections merge, last value wins",
			in:   "[a]\nk = 1\nj = 2\n[b]\nk = 3\n[a]\nk = 4\n",
			want: iniSections{"a": {"k": "4", "j": "2"}, "b": {"k": "3"}},
		},
		{
			name: "whitespace in header normalized, CRLF",
			in:   "[  profile   spaced  ]\r\nk = v\r\n",
			want: iniSections{"profile spaced": {"k": "v"}},
		},
		{name: "empty", in: "", want: iniSections{}},
		{name: "unclosed header", in: "[default\nk = v\n", wantErr: "line 1: section header without closing ]"},
		{name: "empty header", in: "[ ]\n", wantErr: "line 1: empty section name"},
		{name: "text after header", in: "[a] b\n", wantErr: "line 1: text after section header"},
		{name: "key outside section", in: "k = v\n", wantErr: "line 1: key \"k\" outside any section"},
		{name: "no equals", in: "[a]\njust words\n", wantErr: "line 2: expected key = value"},
		{name: "empty key", in: "[a]\n = secretvalue\n", wantErr: "line 2: empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseINI([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parseINI error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseINI: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseINI = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseINILineTooLong(t *testing.T) {
	in := "[a]\nk = " + strings.Repeat("x", maxConfigFileSize+1) + "\n"
	if _, err := parseINI([]byte(in)); err == nil {
		t.Error("parseINI accepted a line longer than the file size limit")
	}
}

func FuzzParseINI(f *testing.F) {
	f.Add("[default]\naws_access_key_id = AKID\naws_secret_access_key = s\n")
	f.Add("[profile a]\nrole_arn = x\nsource_profile = b\n[profile b]\ns3 =\n  k = v\n")
	f.Add("[a\n")
	f.Add("\ufeff; c\n# c\n[x] ; c\nk=v # c\n")
	f.Fuzz(func(t *testing.T, in string) {
		sections, err := parseINI([]byte(in))
		if err != nil {
			if sections != nil {
				t.Errorf("parseINI returned sections with error %v", err)
			}
			return
		}
		for name, kv := range sections {
			if name == "" || strings.TrimSpace(name) != name {
				t.Errorf("section name %q not trimmed", name)
			}
			for k := range kv {
				if k == "" || k != strings.ToLower(k) {
					t.Errorf("key %q empty or not lower case", k)
				}
			}
		}
	})
}
