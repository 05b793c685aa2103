// Package clienttoken is how Shomei's gRPC clients and the CA read the bearer
// tokens that identify municipal systems and OCSP replicas
// (ca/service.TokenAuthorizer), and how clients send them (Dial): over TLS
// 1.2 or later when they have the CA's certificate, presenting their own
// client certificate when the CA requires mutual TLS. Token files and
// private keys must be private to their owner (internal/secfile).
package clienttoken
