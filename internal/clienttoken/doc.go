// Package clienttoken is how Shomei's gRPC clients and the CA read the bearer
// tokens that identify municipal systems and OCSP replicas
// (ca/service.TokenAuthorizer), and how clients send them.
package clienttoken
