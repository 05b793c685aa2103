// Package softhsm sets up SoftHSM2 tokens for development and tests, and can
// put one behind a p11-kit server so that a test can take the HSM away and
// bring it back the way a network HSM fails.
//
// Every token lives in a directory of its own with a private softhsm2.conf;
// nothing here touches the system-wide SoftHSM2 configuration. SoftHSM2 reads
// SOFTHSM2_CONF once, when the module is initialised, so a process that uses
// the module must set it (see Dir.Setenv) before opening any token.
package softhsm
