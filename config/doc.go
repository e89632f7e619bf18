// Package config is Chancery's one typed configuration: loaded from a YAML file,
// overridden by CHANCERY_* environment variables and then by command-line flags, and
// validated as a whole at start so that a mistake is reported before anything runs.
//
// Decoding is strict: an unknown key is an error naming the key and its line. Validate
// reports every problem it finds, not just the first, which is what `chancery config
// check` prints. Only cmd/chancery and server read this package; each capability is
// handed its own typed section.
package config
