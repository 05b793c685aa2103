package ca

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
)

// CRL shards (R-R5). A certificate is issued into a CRL partition of its
// profile's issuer key generation and its municipality, and into a shard
// of that partition, so that no CRL ever lists more than
// Config.CRLShardSize entries: since any certificate may be revoked, no
// shard is given more certificates than that. The shard is in the
// certificate (cRLDistributionPoints: URL and directoryName), so it is
// chosen before the TBS is linted and recorded; the store counts each
// shard's certificates and refuses a full one in the reserving
// transaction (ca/store shards.go), and the cycle then plans the
// certificate again in the next shard (cycle.go). This process remembers
// the shard it plans in for each partition (openShards) and asks the store
// only on its first certificate there and when a shard was found full.

// maxShardAttempts bounds how often one issuance is planned again because
// the shard it was planned in filled meanwhile (other requests, other
// processes). Each attempt moves on to a later shard, so only a tiny
// shard size under heavy concurrency needs more than two.
const maxShardAttempts = 32

// shardBase names the shards of one partition: a profile's issuer key
// generation and a municipality.
type shardBase struct {
	profile      Profile
	generation   uint32
	municipality string // the 5-digit code
}

// name is the CRL partition name of shard n: "<sign|auth>-g<generation>-
// <municipality code>" for shard 0, the name every certificate had before
// shards (so they and their stores keep it), and "…-s<n>" from shard 1 on,
// e.g. "sign-g1-13221" and "sign-g1-13221-s1". The partition's URL is
// <CRLBaseURL>/<name>.crl (crl.PartitionOf reads the name back from it).
func (b shardBase) name(n uint32) string {
	s := issuer.ShortName(b.profile) + "-g" + strconv.FormatUint(uint64(b.generation), 10) + "-" + b.municipality
	if n > 0 {
		s += "-s" + strconv.FormatUint(uint64(n), 10)
	}
	return s
}

// openShards is, per partition, the shard this process plans new
// certificates in: the first it does not know to be full.
type openShards struct {
	mu   sync.Mutex
	open map[shardBase]uint32
}

// shardFor is the shard to plan a certificate of b in.
func (c *CA) shardFor(b shardBase) (uint32, error) {
	c.shards.mu.Lock()
	n, ok := c.shards.open[b]
	c.shards.mu.Unlock()
	if ok {
		return n, nil
	}
	return c.nextOpenShard(b, 0)
}

// shardFull records that shard full of b was refused as full, and returns
// the shard to plan in now.
func (c *CA) shardFull(b shardBase, full uint32) (uint32, error) {
	c.log.Info("CRL shard full, issuing into the next", "partition", b.name(full), "size", c.cfg.CRLShardSize)
	return c.nextOpenShard(b, full+1)
}

// nextOpenShard asks the store for the first shard of b from shard from on
// that is not full, and remembers it unless another request of this
// process found a later one meanwhile.
func (c *CA) nextOpenShard(b shardBase, from uint32) (uint32, error) {
	n, err := c.cfg.Store.OpenCRLShard(b.name, from, c.cfg.CRLShardSize)
	if err != nil {
		return 0, fmt.Errorf("ca: finding an open CRL shard: %w", err)
	}
	c.shards.mu.Lock()
	defer c.shards.mu.Unlock()
	if cur, ok := c.shards.open[b]; ok && cur > n {
		return cur, nil
	}
	c.shards.open[b] = n
	return n, nil
}

// placeIn puts the planned certificate in shard n of its partition: its
// partition name and the cRLDistributionPoints it carries.
func (p *plan) placeIn(n uint32, crlBaseURL string) {
	m := p.municipality
	p.shard = n
	p.partition = p.base.name(n)
	p.req.CRL = profile.CRLDistributionPoint{
		Name: profile.CRLDistributionPointName(p.base.profile, m.Prefecture, m.Name, n),
		URL:  crlBaseURL + "/" + p.partition + ".crl",
	}
}

// shardsExhausted is the refusal of an issuance whose shard kept filling
// up before it could be recorded.
func shardsExhausted(err error) error {
	return &Error{Kind: KindUnavailable, Err: fmt.Errorf("ca: every CRL shard planned in %d attempts filled before the issuance was recorded, nothing was issued; try again: %w",
		maxShardAttempts, err)}
}
