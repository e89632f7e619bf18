package awscreds

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// iniSections maps a section name to its keys (lower-cased) and values.
type iniSections map[string]map[string]string

// parseINI parses the INI dialect of the AWS shared config and credentials files:
// [section] headers, key = value pairs, full-line comments starting with # or ;,
// inline comments after whitespace, and indented sub-properties (as in "s3 =" blocks),
// which are skipped. Repeated sections merge and a repeated key keeps its last value.
//
// The files are untrusted input: errors name the line number, never a value, since a
// value may be a secret key.
func parseINI(data []byte) (iniSections, error) {
	sections := iniSections{}
	var cur map[string]string
	lastKey := "" // the key indented lines would belong to
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxConfigFileSize)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		if n == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		indented := raw[0] == ' ' || raw[0] == '\t'
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return nil, fmt.Errorf("line %d: section header without closing ]", n)
			}
			if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != '#' && rest[0] != ';' {
				return nil, fmt.Errorf("line %d: text after section header", n)
			}
			name := strings.Join(strings.Fields(line[1:end]), " ")
			if name == "" {
				return nil, fmt.Errorf("line %d: empty section name", n)
			}
			if sections[name] == nil {
				sections[name] = map[string]string{}
			}
			cur, lastKey = sections[name], ""
			continue
		}
		if indented && lastKey != "" {
			// A sub-property ("s3 =\n  max_concurrent_requests = 10") or a continuation
			// line: no credential setting uses either.
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: expected key = value", n)
		}
		key = strings.ToLower(strings.TrimSpace(key))
		if key == "" {
			return nil, fmt.Errorf("line %d: empty key", n)
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: key %q outside any section", n, key)
		}
		cur[key] = stripInlineComment(strings.TrimSpace(value))
		lastKey = key
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	return sections, nil
}

// stripInlineComment drops a trailing comment that starts with whitespace followed by
// # or ;, as the SDKs do; a # or ; inside a token (a URL fragment) is kept.
func stripInlineComment(v string) string {
	for i := 1; i < len(v); i++ {
		if (v[i] == '#' || v[i] == ';') && (v[i-1] == ' ' || v[i-1] == '\t') {
			return strings.TrimSpace(v[:i])
		}
	}
	return v
}
