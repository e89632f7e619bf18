// Package testenv starts the real dependencies Chancery's tests run against —
// PostgreSQL 15, moto (the AWS API emulator) and a Vault dev server — each on a free
// loopback port, waits until it answers (never a fixed sleep), and stops it with
// t.Cleanup.
//
// A helper whose tool is missing skips the test with a message naming the tool, unless
// CHANCERY_TEST_REQUIRE=all is set, in which case it fails: CI sets it so that nothing
// is skipped silently. Vault is the exception: no package registry ships it, so its
// tests skip loudly even then unless a binary is on PATH or at $CHANCERY_VAULT_BIN.
//
// When a dependency fails to start, the test failure includes the tail of its output.
package testenv
