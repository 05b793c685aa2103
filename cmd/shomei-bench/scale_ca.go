package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/clienttoken"
	"github.com/shomei-pki/shomei/internal/softhsm"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

// scaleCA is one driver's CA: its token, configuration and store (and,
// for PostgreSQL, the cluster it runs on), used by every cell of the
// driver in turn.
type scaleCA struct {
	o                  *scaleOptions
	driver, dir, caBin string
	conf, token        string
	cluster            *pg.Cluster
	log                *slog.Logger
	// templated: the CA has issued the template holder's certificates,
	// which the preload copies.
	templated    bool
	templateSign *x509.Certificate
	// preloaded holders (preloadHolder(0 … preloaded-1)).
	preloaded int
	// seq numbers the load's holders across the driver's cells.
	seq atomic.Int64
}

// scaleDB is the PostgreSQL database of the CA's store.
const scaleDB = "shomei_scale"

// newScaleCA makes the driver's token, store and configuration and runs
// the key ceremony.
func newScaleCA(ctx context.Context, o *scaleOptions, driver, caBin, work string, log *slog.Logger) (_ *scaleCA, err error) {
	d := &scaleCA{o: o, driver: driver, dir: filepath.Join(work, driver), caBin: caBin, log: log}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, err
	}
	hsmDir, err := softhsm.NewDir(filepath.Join(d.dir, "softhsm"))
	if err != nil {
		return nil, err
	}
	if err := hsmDir.InitToken("shomei-scale", softhsm.TestSOPIN, softhsm.TestPIN); err != nil {
		return nil, err
	}
	hsmToken, err := testenv.Token(hsmDir, "shomei-scale")
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	d.token = hex.EncodeToString(raw)
	if _, err := testenv.WriteFile(d.dir, "municipal.token", d.token+"\n"); err != nil {
		return nil, err
	}
	// No client or relying-party rate limits: the load generator is one
	// client and one address, and the limits are not what is measured.
	extra := `certificates:
  allow_ecdsa_p256: true
http_access:
  per_address:
    rate: -1
clients:
  - name: bench-municipality
    token_file: municipal.token
    municipalities: ["13221"]
    rate: -1
`
	switch driver {
	case driverBolt:
		if err := testenv.WritePIN(d.dir); err != nil {
			return nil, err
		}
		d.conf, err = testenv.WriteFile(d.dir, "shomei.yaml", testenv.CAConfig(hsmToken, extra))
	case driverPostgres:
		log.Info("starting a throwaway PostgreSQL cluster")
		if d.cluster, err = pg.Start(""); err != nil {
			return nil, err
		}
		if out, err := d.cluster.Psql("postgres", "CREATE DATABASE "+scaleDB); err != nil {
			return nil, fmt.Errorf("create database: %v: %s", err, out)
		}
		d.conf, err = testenv.WriteCAPostgres(d.dir, hsmToken, extra, d.cluster.DSN(scaleDB))
	}
	if err != nil {
		return nil, err
	}
	log.Info("key ceremony on a fresh token", "dir", d.dir)
	if err := runCeremony(ctx, d.conf, log); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *scaleCA) close() {
	if d.cluster != nil {
		if err := d.cluster.Stop(); err != nil {
			d.log.Warn("stopping the PostgreSQL cluster", "error", err)
		}
		d.cluster = nil
	}
}

// pgSettings names the cluster's durability settings, for the report.
func (d *scaleCA) pgSettings() string {
	if d.cluster == nil {
		return ""
	}
	var parts []string
	for _, name := range []string{"server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers"} {
		v, err := d.cluster.Psql(scaleDB, "SHOW "+name)
		if err != nil {
			v = "?"
		}
		parts = append(parts, name+" "+v)
	}
	return strings.Join(parts, ", ")
}

// diskBytes is the store's size on disk: the bbolt file, or
// pg_database_size.
func (d *scaleCA) diskBytes() (int64, error) {
	if d.cluster == nil {
		st, err := os.Stat(filepath.Join(d.dir, "shomei.db"))
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	out, err := d.cluster.Psql(scaleDB, "SELECT pg_database_size(current_database())")
	if err != nil {
		return 0, fmt.Errorf("pg_database_size: %v: %s", err, out)
	}
	return strconv.ParseInt(strings.TrimSpace(out), 10, 64)
}

// runningCA is a started shomei-ca with its gRPC clients.
type runningCA struct {
	*caProcess
	conn   *grpc.ClientConn
	ca     cav1.CertificateAuthorityClient
	events cav1.EventsClient
	pprof  string // its profile listener, when asked for
	// verified: how long after it was started the CA had verified its
	// audit log and reconciled every certificate (0 if its log did not
	// say).
	verified time.Duration
}

// start starts the CA, with its profile listener when profiling, and
// returns it and how long it took to listen.
func (d *scaleCA) start(ctx context.Context, logName string) (*runningCA, time.Duration, error) {
	r := &runningCA{}
	if d.o.CAProfile != "" {
		port, err := freePort()
		if err != nil {
			return nil, 0, err
		}
		r.pprof = fmt.Sprintf("127.0.0.1:%d", port)
		// The CA inherits this process's environment; one CA starts
		// at a time.
		os.Setenv("SHOMEI_PPROF_LISTEN", r.pprof)
		defer os.Unsetenv("SHOMEI_PPROF_LISTEN")
	}
	began := time.Now()
	p, err := startCAWithin(ctx, d.caBin, d.conf, filepath.Join(d.dir, logName), 30*time.Minute)
	if err != nil {
		return nil, 0, err
	}
	took := time.Since(began)
	r.caProcess = p
	if at, ok := logTime(p.Log.String(), `msg="audit log verified"`); ok {
		r.verified = at.Sub(began)
	}
	r.conn, err = grpc.NewClient(p.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(clienttoken.Bearer(d.token)))
	if err != nil {
		p.stop()
		return nil, 0, err
	}
	r.ca, r.events = cav1.NewCertificateAuthorityClient(r.conn), cav1.NewEventsClient(r.conn)
	return r, took, nil
}

// stop ends the CA (SIGTERM: it signs its last checkpoint and seals the
// audit log) and its client connection.
func (r *runningCA) stop() error {
	r.conn.Close()
	return r.Stop(2 * time.Minute)
}

// storeCPU is the PostgreSQL server's CPU time so far (nil with bbolt):
// its postmaster's, from postmaster.pid, and its children's.
func (d *scaleCA) storeCPU() func() (time.Duration, error) {
	if d.cluster == nil {
		return nil
	}
	return func() (time.Duration, error) {
		raw, err := os.ReadFile(filepath.Join(d.cluster.Dir, "data", "postmaster.pid"))
		if err != nil {
			return 0, err
		}
		first, _, _ := strings.Cut(string(raw), "\n")
		pid, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil {
			return 0, fmt.Errorf("postmaster.pid: %q", first)
		}
		return childrenCPU(pid)
	}
}

// logTime is the time of the first line of a CA's log that holds marker
// (slog's text format: time=<RFC 3339> … ).
func logTime(log, marker string) (time.Time, bool) {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, marker) {
			continue
		}
		v, ok := strings.CutPrefix(line, "time=")
		if !ok {
			return time.Time{}, false
		}
		v, _, _ = strings.Cut(v, " ")
		t, err := time.Parse(time.RFC3339Nano, v)
		return t, err == nil
	}
	return time.Time{}, false
}
