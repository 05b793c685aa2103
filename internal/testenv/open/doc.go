// Package open opens what a test works on: a SoftHSM2 token made by
// testenv.Main, logged in with softhsm.TestPIN, and a new, empty store in
// the test's temporary directory. Both are closed when the test ends. It
// also makes the next issuer key generation in a token, with its link
// certificates (IssuerGeneration), until tests can rotate through the CA.
//
// It is a package of its own, not part of testenv, because it imports hsm
// and ca/store, whose in-package tests use testenv. It is imported only by
// tests and by cmd/shomei-bench.
package open
