package keybroker

import (
	"strings"
)

// bindings finds the binding for a caller ARN.
type bindings struct {
	exact    map[string][]Binding
	wildcard []Binding // sorted longest prefix first
}

func newBindings(bs []Binding) *bindings {
	b := &bindings{exact: map[string][]Binding{}}
	for _, x := range bs {
		if strings.HasSuffix(x.Role, "*") {
			b.wildcard = append(b.wildcard, x)
		} else {
			b.exact[x.Role] = append(b.exact[x.Role], x)
		}
	}
	// Longest prefix first: the most specific pattern wins, whatever the file order.
	for i := 1; i < len(b.wildcard); i++ {
		for j := i; j > 0 && len(b.wildcard[j].Role) > len(b.wildcard[j-1].Role); j-- {
			b.wildcard[j], b.wildcard[j-1] = b.wildcard[j-1], b.wildcard[j]
		}
	}
	return b
}

// match returns the binding that grants arn keys for tenant: an exact binding first,
// then the longest matching wildcard. An identity may be bound to several tenants.
func (b *bindings) match(arn, tenant string) (Binding, bool) {
	for _, x := range b.exact[arn] {
		if x.Tenant == tenant {
			return x, true
		}
	}
	for _, x := range b.wildcard {
		if x.Tenant == tenant && strings.HasPrefix(arn, strings.TrimSuffix(x.Role, "*")) {
			return x, true
		}
	}
	return Binding{}, false
}

// NormalizeARN maps an STS caller ARN to the identity bindings are written against: an
// assumed-role session (arn:aws:sts::123:assumed-role/NAME/SESSION) becomes its role
// (arn:aws:iam::123:role/NAME); every other ARN is returned unchanged.
func NormalizeARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sts" {
		return arn
	}
	res, ok := strings.CutPrefix(parts[5], "assumed-role/")
	if !ok {
		return arn
	}
	role, _, ok := strings.Cut(res, "/")
	if !ok || role == "" {
		return arn
	}
	return "arn:" + parts[1] + ":iam::" + parts[4] + ":role/" + role
}
