// Command shomeictl is the operator's tool for a Shomei certificate authority:
// the issuer key ceremony, listing issuer keys and exporting issuer
// certificates for relying parties.
//
// Every command reads the one configuration file (--config, or the
// SHOMEI_CONFIG environment variable, or var/shomei.yaml, which `make run`
// writes for the development SoftHSM2 token). The HSM PIN comes from the file
// or environment variable the configuration names, never from a flag.
package main
