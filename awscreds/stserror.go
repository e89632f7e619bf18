package awscreds

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// APIError is an error response from an AWS Query API such as STS:
//
//	<ErrorResponse><Error><Type>Sender</Type><Code>…</Code><Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>
//
// (or with Error inside an Errors element, as IAM-style services answer).
// Use errors.As to get at it.
type APIError struct {
	StatusCode int
	Type       string // "Sender" or "Receiver"
	Code       string // "AccessDenied", "ExpiredToken", "SignatureDoesNotMatch", …
	Message    string
	RequestID  string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "api error: HTTP %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	return b.String()
}

// retryable reports whether sending the same request again may succeed.
func (e *APIError) retryable() bool {
	switch e.Code {
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "IDPCommunicationError", "InternalFailure", "ServiceUnavailable":
		return true
	}
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// parseSTSError turns an error response body (untrusted) into an *APIError. A body
// that is not the expected XML still yields an APIError with the status, so a caller
// can always errors.As it.
func parseSTSError(status int, headerRequestID string, body []byte) *APIError {
	type errorElem struct {
		Type    string
		Code    string
		Message string
	}
	// STS puts Error directly under ErrorResponse; IAM-style services (and moto's
	// authentication layer) wrap it in Errors.
	var doc struct {
		Error           errorElem
		Errors          errorElem `xml:"Errors>Error"`
		RequestID       string    `xml:"RequestId"`
		RequestIDInMeta string    `xml:"ResponseMetadata>RequestId"`
	}
	e := &APIError{StatusCode: status, RequestID: headerRequestID}
	if err := xml.Unmarshal(body, &doc); err != nil {
		e.Message = "unparsable error response: " + xmlSyntaxOnly(err).Error()
		return e
	}
	if doc.Error.Code == "" {
		doc.Error = doc.Errors
	}
	e.Type = truncate(strings.TrimSpace(doc.Error.Type), 64)
	e.Code = truncate(strings.TrimSpace(doc.Error.Code), 128)
	e.Message = truncate(strings.TrimSpace(doc.Error.Message), 1024)
	if e.Code == "" && e.Message == "" {
		e.Message = "response is not an AWS error document"
	}
	if id := strings.TrimSpace(doc.RequestID + doc.RequestIDInMeta); id != "" && e.RequestID == "" {
		e.RequestID = truncate(id, 128)
	}
	return e
}

// xmlSyntaxOnly reduces an XML decoding error to its position: the error text of
// encoding/xml can quote the input.
func xmlSyntaxOnly(err error) error {
	var syntax *xml.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Errorf("XML syntax error on line %d", syntax.Line)
	}
	if errors.Is(err, io.EOF) {
		return errors.New("empty or truncated XML")
	}
	return errors.New("invalid XML")
}
