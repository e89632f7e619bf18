package awscreds

import (
	"errors"
	"fmt"
	"io"
	"net/http"
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

// httpClientOr returns hc, or a default client when nil. The default has no overall
// timeout of its own: each call bounds itself with its context.
func httpClientOr(hc *http.Client) *http.Client {
	if hc != nil {
		return hc
	}
	return http.DefaultClient
}
