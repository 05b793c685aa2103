package hsm

import "github.com/miekg/pkcs11"

func attrsID(id []byte) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, id)}
}
