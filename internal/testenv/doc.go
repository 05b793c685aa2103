// Package testenv is the environment Shomei's tests and benchmarks run in,
// set up as an operator would: SoftHSM2 tokens made once per test binary
// (Main), configuration files pointing at them (CAConfig, Replica), Shomei's
// binaries built and started, their logs kept, until they say they listen
// (Build, Command), and a card's PKCS#10 request (CardCSR). It also makes
// the software certificates tests sign with (SelfSigned, Certify,
// IssuerTemplate, Serial) and the clock they set and move (Clock). Its
// subpackage open opens a test's token and store.
//
// It is imported only by tests and by cmd/shomei-bench, never by a
// binary's serving code. It does not import hsm or internal/x509enc, so
// that their own (in-package) tests can use it.
//
// Invariants: every file it writes is readable by its owner only (0600, the
// rule every binary enforces for PIN, token and configuration files, issue 9
// item 12); every PIN is softhsm.TestPIN, which guards throwaway tokens only;
// no holder's personal data is made here.
package testenv
