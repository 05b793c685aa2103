package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shomei-pki/shomei/ca/store/engine"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// TestPartitionRevocations: the CRL publisher's reading of a partition
// gives, entry for entry, what PartitionEntries gives: revoked, unexpired
// certificates in serial order, an index record from before the index
// kept the entry (empty) read from its certificate, an expired one left
// out.
func TestPartitionRevocations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTemp(t, be)
		const partition = "sign-g1-13221-s2"
		var serials [][]byte
		for i := range 4 {
			rec := pending(fmt.Sprintf("revocations-%d", i), sign)
			rec.CrlPartition = partition
			if i == 3 { // expires before the partition is read
				rec.NotAfter = timestamppb.New(t0.Add(time.Hour))
			}
			issue(t, s, Reservation{Certs: []*storev1.Certificate{rec}, Now: t0})
			serials = append(serials, rec.Serial)
		}
		for i, serial := range serials {
			r := RevokeRequest{Serials: [][]byte{serial}, Reason: int32([]int{1, 3, 0, 5}[i]), InvalidityDate: t0.Add(-time.Duration(i) * time.Hour),
				Now: t0.Add(time.Duration(i) * time.Minute), Actor: "test", Cause: "test"}
			if _, err := s.Revoke(r); err != nil {
				t.Fatal(err)
			}
		}
		// The second one as the index had it before it kept entries.
		s = behindBack(t, be, s, func(tx engine.Tx) error {
			return tx.Bucket(bucketEntries).Put(append(entryPrefix(partition), serials[1]...), nil)
		})

		now := t0.Add(24 * time.Hour)
		var want []string
		if _, err := s.PartitionEntries(partition, now, func(c *storev1.Certificate) error {
			want = append(want, fmt.Sprintf("%x %v %d %v", c.Serial, c.Revocation.RevokedAt.AsTime(), c.Revocation.Reason, c.Revocation.InvalidityDate.AsTime()))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var got []string
		if _, err := s.PartitionRevocations(partition, now, func(serial []byte, revokedAt time.Time, reason int32, invalidity time.Time) error {
			got = append(got, fmt.Sprintf("%x %v %d %v", serial, revokedAt, reason, invalidity))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(want) != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("PartitionRevocations:\n%v\nPartitionEntries:\n%v\nwant 3 entries", got, want)
		}
	})
}

// FuzzDecodeEntry: every input proto.Unmarshal takes as a Certificate is
// read by crlEntry.decode as the unmarshalled record says (entryOf).
// Inputs it refuses may be read or refused.
func FuzzDecodeEntry(f *testing.F) {
	ts := func(sec int64, nanos int32) *timestamppb.Timestamp {
		return &timestamppb.Timestamp{Seconds: sec, Nanos: nanos}
	}
	for _, rec := range []*storev1.Certificate{
		{Serial: []byte{0x41, 2, 3}, NotAfter: ts(1900000000, 0), Revocation: &storev1.Revocation{RevokedAt: ts(1800000000, 5), Reason: 3,
			InvalidityDate: ts(1799990000, 0), Cause: "event move-1"}},
		{Serial: []byte{7}, NotAfter: ts(1900000000, 0), Revocation: &storev1.Revocation{RevokedAt: ts(1800000000, 0)}},
		{Serial: []byte{7}, NotAfter: ts(1900000000, 0)},
		{Serial: []byte{7}, Revocation: &storev1.Revocation{RevokedAt: ts(-1, -5), Reason: -1, InvalidityDate: ts(math.MaxInt64, 0)}},
		{Serial: []byte{8}, TbsDer: []byte{0x30, 0}, HolderId: "h", CrlPartition: "sign-g1-13221", Revocation: &storev1.Revocation{}},
		{},
	} {
		v, err := marshal(rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
		// Given twice: the last serial and reason, the messages merged.
		f.Add(append(bytes.Clone(v), v...))
		// An unknown field, and a known one of another wire type.
		f.Add(protowire.AppendVarint(protowire.AppendTag(bytes.Clone(v), 99, protowire.VarintType), 5))
		f.Add(protowire.AppendVarint(protowire.AppendTag(bytes.Clone(v), fieldRevocation, protowire.VarintType), 5))
		f.Add(v[:len(v)/2])
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var rec storev1.Certificate
		refused := proto.Unmarshal(v, &rec) != nil
		var got crlEntry
		err := got.decode(v)
		if refused {
			return
		}
		if err != nil {
			t.Fatalf("decode refuses %x, which proto.Unmarshal takes: %v", v, err)
		}
		want := entryOf(&rec)
		if !bytes.Equal(got.serial, want.serial) || !got.notAfter.Equal(want.notAfter) || got.revoked != want.revoked ||
			!got.revokedAt.Equal(want.revokedAt) || got.reason != want.reason || !got.invalidityDate.Equal(want.invalidityDate) {
			t.Fatalf("decode of %x:\n%+v\nproto.Unmarshal:\n%+v", v, got, want)
		}
	})
}

// BenchmarkDecodeEntry reads one CRL index record: crlEntry.decode, and
// proto.Unmarshal for comparison.
func BenchmarkDecodeEntry(b *testing.B) {
	v, err := marshal(&storev1.Certificate{Serial: bytes.Repeat([]byte{0x5a}, 16), NotAfter: timestamppb.New(t0.AddDate(5, 0, 0)),
		Revocation: &storev1.Revocation{RevokedAt: timestamppb.New(t0), Reason: 3, InvalidityDate: timestamppb.New(t0.Add(-time.Hour)), Cause: "event move-1"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e crlEntry
			if err := e.decode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var rec storev1.Certificate
			if err := proto.Unmarshal(v, &rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPartitionRevocations reads a CRL shard of 100,000 revoked
// certificates, as the publisher does before each CRL of it, on each
// engine (loaded by LoadSyntheticRevocations).
//
//	go test -run '^$' -bench PartitionRevocations ./ca/store
func BenchmarkPartitionRevocations(b *testing.B) {
	const n = 100_000
	p := &storev1.CRLPartition{Name: "sign-g1-13221-s1", Profile: sign, IssuerGeneration: 1, Url: "http://shomei.example/crl/sign-g1-13221-s1.crl",
		DistributionPoint: []string{"C=JP", "CN=清瀬市 CRLDP s1"}}
	entries := make([]*storev1.Certificate, n)
	for i := range entries {
		serial := binary.BigEndian.AppendUint64([]byte{0x40, 0, 0, 0, 0, 0, 0, 0}, uint64(i)*7919)
		entries[i] = &storev1.Certificate{Serial: serial, NotAfter: timestamppb.New(t0.AddDate(5, 0, 0)),
			Revocation: &storev1.Revocation{RevokedAt: timestamppb.New(t0), Reason: 3, InvalidityDate: timestamppb.New(t0.Add(-time.Hour)), Cause: "event"}}
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := openTemp(b, e.fresh(b))
			if err := s.LoadSyntheticRevocations(p, entries); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				count := 0
				if _, err := s.PartitionRevocations(p.Name, t0, func([]byte, time.Time, int32, time.Time) error {
					count++
					return nil
				}); err != nil || count != n {
					b.Fatalf("%d entries (%v), want %d", count, err, n)
				}
			}
		})
	}
}
