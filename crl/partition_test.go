package crl_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/crl"
)

// TestPartitionOf reads partitions back from certificates made with
// ca/profile, shard 1 of a municipality among them, and builds a CRL from what it read that Check accepts with
// the original partition.
func TestPartitionOf(t *testing.T) {
	for _, f := range fixtures() {
		for _, p := range []crl.Partition{f.partition, f.other, f.shard} {
			t.Run(f.name+"/"+p.Name, func(t *testing.T) {
				cert := issue(t, f, p)
				got, err := crl.PartitionOf(cert)
				if err != nil {
					t.Fatalf("PartitionOf: %v", err)
				}
				if got.Name != p.Name || got.URL != p.URL || !slices.Equal(got.DistributionPoint, p.DistributionPoint) {
					t.Errorf("PartitionOf = %+v, want %+v", got, p)
				}
				req := request(f, revocations(cert.SerialNumber))
				req.Partition = got
				der, err := crl.Build(req)
				if err != nil {
					t.Fatal(err)
				}
				req.Partition = p
				if err := crl.Check(der, req); err != nil {
					t.Errorf("Check with the original partition: %v", err)
				}
			})
		}
	}
}

// TestPartitionOfRefuses checks certificates whose cRLDistributionPoints
// do not name a partition as ca/profile writes it.
func TestPartitionOfRefuses(t *testing.T) {
	f := fixtures()[0]
	cert := issue(t, f, f.partition)
	uri := []byte(f.partition.URL)
	name, err := f.partition.DistributionPoint.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// dp encodes a cRLDistributionPoints value from GeneralNames given as
	// (tag, body) pairs, with extra bytes inside the DistributionPoint.
	type gn struct {
		tag  cbasn1.Tag
		body []byte
	}
	uriName := gn{cbasn1.Tag(6).ContextSpecific(), uri}
	dirName := gn{cbasn1.Tag(4).ContextSpecific().Constructed(), name}
	dp := func(points int, extra []byte, names ...gn) []byte {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for range points {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
							for _, n := range names {
								b.AddASN1(n.tag, func(b *cryptobyte.Builder) { b.AddBytes(n.body) })
							}
						})
					})
					b.AddBytes(extra)
				})
			}
		})
		return b.BytesOrPanic()
	}
	// T61String instead of UTF8String for the CN: the same name to X.500,
	// other bytes.
	cn := "清瀬市 CRLDP"
	utf8CN := string([]byte{byte(cbasn1.UTF8String), byte(len(cn))}) + cn
	t61CN := string([]byte{byte(cbasn1.T61String), byte(len(cn))}) + cn
	t61 := []byte(strings.Replace(string(name), utf8CN, t61CN, 1))
	if string(t61) == string(name) {
		t.Fatal("the CN is not encoded as expected")
	}
	withDP := func(value []byte) *x509.Certificate {
		c := *cert
		c.Extensions = slices.Clone(cert.Extensions)
		for i, e := range c.Extensions {
			if e.Id.Equal(oidCRLDistributionPoints) {
				c.Extensions[i] = pkix.Extension{Id: e.Id, Value: value}
			}
		}
		return &c
	}
	noDP := *cert
	noDP.Extensions = slices.DeleteFunc(slices.Clone(cert.Extensions), func(e pkix.Extension) bool { return e.Id.Equal(oidCRLDistributionPoints) })

	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"nil", nil, "no certificate"},
		{"no cRLDistributionPoints", &noDP, "no cRLDistributionPoints extension"},
		{"as issued, encoded here", withDP(dp(1, nil, uriName, dirName)), ""},
		{"directoryName first", withDP(dp(1, nil, dirName, uriName)), "not a URI then a directoryName"},
		{"URL only", withDP(dp(1, nil, uriName)), "not a URI then a directoryName"},
		{"two points", withDP(dp(2, nil, uriName, dirName)), "more than one DistributionPoint"},
		{"with reasons", withDP(dp(1, []byte{0x81, 0x02, 0x06, 0x40}, uriName, dirName)), "reasons or cRLIssuer"},
		{"URL not .crl", withDP(dp(1, nil, gn{uriName.tag, []byte("http://shomei.example/crl/x")}, dirName)), "does not end in /<partition>.crl"},
		{"https URL", withDP(dp(1, nil, gn{uriName.tag, []byte("https://shomei.example/crl/x.crl")}, dirName)), `scheme "https"`},
		{"T61String CN", withDP(dp(1, nil, uriName, gn{dirName.tag, t61})), "not encoded as this CA encodes partitions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := crl.PartitionOf(tc.cert)
			if tc.want == "" {
				if err != nil || p.Name != f.partition.Name {
					t.Errorf("PartitionOf = %+v, %v", p, err)
				}
				return
			}
			if !errors.Is(err, crl.ErrNoPartition) {
				t.Fatalf("error %v does not wrap ErrNoPartition", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.want)
			}
		})
	}
}
