// Command shomeictl is the operator's tool for a Shomei certificate authority:
// the issuer key ceremony, listing issuer keys and exporting issuer
// certificates for relying parties, and replaying a municipality's bulk
// events feed into a running CA (`events import`, docs/events-feed.md).
//
// The commands that work on the store and the HSM read the one configuration
// file (--config, or the SHOMEI_CONFIG environment variable, or
// var/shomei.yaml, which `make run` writes for the development SoftHSM2
// token). The HSM PIN comes from the file or environment variable the
// configuration names, never from a flag. `events import` talks to the CA
// over gRPC instead, as a municipal system does: it needs the CA's address
// and, when the CA has clients configured, a client token from a file.
package main
