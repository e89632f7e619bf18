package awscreds

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
)

// maxMetadataResponse bounds responses of the metadata and container endpoints.
const maxMetadataResponse = 64 << 10

// doBounded sends req and reads at most limit bytes of the response body.
func doBounded(hc *http.Client, req *http.Request, limit int64) (*http.Response, []byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp, nil, fmt.Errorf("reading response: %w", err)
	}
	if int64(len(body)) > limit {
		return resp, nil, fmt.Errorf("response larger than %d bytes", limit)
	}
	return resp, body, nil
}

// connectionRefused reports whether nothing listens at the address: retrying within
// milliseconds cannot help, and failing fast is what keeps detection off AWS quick.
func connectionRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// metadataClient is the default HTTP client of the IMDS and container providers,
// made on first use. Those endpoints are link-local or loopback, so it uses no proxy
// (a proxy could not reach them, and would see the tokens), and it follows no
// redirect (one could lead a request carrying a token to a host the allow-list
// rejects). It has no overall timeout: each call bounds itself with its context.
type metadataClient struct {
	once sync.Once
	hc   *http.Client
}

// get returns override when set, else the default client.
func (m *metadataClient) get(override *http.Client) *http.Client {
	if override != nil {
		return override
	}
	m.once.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		m.hc = &http.Client{
			Transport:     t,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
	return m.hc
}
