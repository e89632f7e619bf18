// Package server composes Chancery's configured capabilities into one HTTP process: it
// mounts each capability's routes next to /healthz (live), /readyz (dependencies up)
// and /metrics (Prometheus), logs every request without its headers or body, and shuts
// down gracefully: on cancellation it stops accepting, lets in-flight requests finish
// up to a deadline, then closes the capabilities.
//
// A capability that is not configured is simply not passed in, and costs nothing.
package server
