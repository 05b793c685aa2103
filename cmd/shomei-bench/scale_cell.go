package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// scaleCell is one issuance cell: a driver's store at one preload size.
type scaleCell struct {
	Driver  string
	Preload int // asked for
	// Stored certificate and audit records when the CA started: the
	// preloaded ones, the template's, and those issued in earlier cells.
	Stored, AuditRecords int
	// Preloaded certificates added for this cell, and how long it took.
	Preloaded   int
	PreloadTime time.Duration
	// StartTime: from starting shomei-ca until it listened (audit log
	// verified, every certificate reconciled).
	StartTime time.Duration
	// VerifyTime: of StartTime, until the CA had verified its audit log
	// and reconciled every certificate with it.
	VerifyTime time.Duration
	DiskBytes  int64 // after the cell
	Issue      issueResult
	Profile    string // the CA's CPU profile of the window, if taken
}

// cell preloads the store to size, starts the CA on it, measures issuance
// and, when events, runs the events cell while the load goes on; then
// stops the CA and measures the store on disk.
func (d *scaleCA) cell(ctx context.Context, size int, events bool) (*scaleCell, *eventsResult, error) {
	c := &scaleCell{Driver: d.driver, Preload: size}
	log := d.log.With("preload", size)
	if add := holdersOf(size) - d.preloaded; add > 0 {
		if !d.templated {
			if err := d.template(ctx); err != nil {
				return nil, nil, err
			}
		}
		log.Info("preloading synthetic certificates", "holders", add, "certificates", 2*add, "workers", d.o.PreloadWorkers)
		began := time.Now()
		err := preload(ctx, preloadJob{conf: d.conf, from: d.preloaded, n: add, workers: d.o.PreloadWorkers, log: log, progress: 15 * time.Second})
		if err != nil {
			return nil, nil, fmt.Errorf("preload: %w", err)
		}
		c.PreloadTime, c.Preloaded = time.Since(began), 2*add
		d.preloaded += add
	}
	counts, err := countStored(d.conf)
	if err != nil {
		return nil, nil, err
	}
	c.Stored, c.AuditRecords = counts.Certificates, counts.AuditRecords

	log.Info("starting shomei-ca", "certificates", c.Stored, "audit_records", c.AuditRecords)
	r, took, err := d.start(ctx, fmt.Sprintf("shomei-ca-%d.log", size))
	if err != nil {
		return nil, nil, err
	}
	c.StartTime, c.VerifyTime = took, r.verified
	stopped := false
	defer func() {
		if !stopped {
			r.stop()
		}
	}()
	if !d.templated {
		if err := d.issueTemplate(ctx, r); err != nil {
			return nil, nil, err
		}
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	load := &issueLoad{cl: r.ca, profiles: d.o.Profiles, seq: &d.seq, prefix: "SCALE-LOAD"}
	load.start(loadCtx, d.o.Clients)
	log.Info("issuing", "clients", d.o.Clients, "profiles", d.o.Profiles, "warmup", d.o.Warmup, "duration", d.o.Duration)
	select {
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-time.After(d.o.Warmup):
	}
	profiled := make(chan error, 1)
	if r.pprof != "" {
		c.Profile = filepath.Join(d.o.CAProfile, fmt.Sprintf("%s-%d.pprof", d.driver, size))
		go func() { profiled <- cpuProfile(ctx, "http://"+r.pprof+"/metrics", d.o.Duration, c.Profile) }()
	} else {
		profiled <- nil
	}
	if c.Issue, err = load.window(ctx, r.Cmd.Process.Pid, d.o.Duration, d.storeCPU()); err != nil {
		return nil, nil, err
	}
	if err := <-profiled; err != nil {
		log.Warn("the CA's CPU profile", "error", err)
		c.Profile = ""
	}
	log.Info("issued", "certs_per_s", int(c.Issue.Rate()), "failed", c.Issue.Failed, "ca_cpu_per_cert", c.Issue.CPUPerCert())
	var ev *eventsResult
	if events {
		log.Info("events cell", "rate", d.o.EventRate, "duration", d.o.EventDuration)
		if ev, err = d.runEvents(ctx, r, load, c.Stored); err != nil {
			return c, nil, fmt.Errorf("events: %w", err)
		}
	}
	stopLoad()
	load.wait()
	stopped = true
	if err := r.stop(); err != nil {
		return c, ev, fmt.Errorf("stopping shomei-ca: %w", err)
	}
	if c.DiskBytes, err = d.diskBytes(); err != nil {
		return c, ev, err
	}
	return c, ev, nil
}

// template starts the CA only to issue the template holder's
// certificates, when the first cell preloads.
func (d *scaleCA) template(ctx context.Context) error {
	r, _, err := d.start(ctx, "shomei-ca-template.log")
	if err != nil {
		return err
	}
	err = d.issueTemplate(ctx, r)
	if serr := r.stop(); err == nil {
		err = serr
	}
	return err
}

// issueTemplate has the CA issue the template holder's AUTH and SIGN
// certificates, which the preload copies and the events cell takes its
// CRL's URL from.
func (d *scaleCA) issueTemplate(ctx context.Context, r *runningCA) error {
	req, err := issueRequest(templateHolder, 2)
	if err != nil {
		return err
	}
	resp, err := r.ca.Issue(ctx, req)
	if err != nil {
		return fmt.Errorf("issuing the template certificates: %w", err)
	}
	for _, c := range resp.Certificates {
		if c.Profile != cav1.Profile_PROFILE_SIGN {
			continue
		}
		if d.templateSign, err = x509.ParseCertificate(c.Der); err != nil {
			return err
		}
	}
	if d.templateSign == nil {
		return errors.New("the template request issued no SIGN certificate")
	}
	d.templated = true
	return nil
}
