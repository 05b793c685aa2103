package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// issueLoad is the load generator of the issuance cells: clients that
// each send one Issue request at a time, with fresh P-256 card keys, for
// holders of their own.
type issueLoad struct {
	cl       cav1.CertificateAuthorityClient
	profiles int
	seq      *atomic.Int64 // holder numbers, unique per store
	prefix   string

	certs, requests, failed atomic.Int64
	recording               atomic.Bool
	mu                      sync.Mutex
	latencies               []time.Duration
	firstErr                string
	wg                      sync.WaitGroup
}

// issueResult is what one measured window saw.
type issueResult struct {
	Certs, Requests, Failed int64
	FirstError              string
	Elapsed                 time.Duration
	// CACPU is the CA process's user and system CPU time in the window;
	// StoreCPU the PostgreSQL server's (its processes'), 0 with bbolt.
	CACPU, StoreCPU time.Duration
	Latencies       []time.Duration // of the requests that ended in the window, sorted
	// LoadAvg is the machine's 1-minute load average at the window's end:
	// how much else wanted the CPUs (the 2 CPUs here are shared).
	LoadAvg string
}

// Rate is certificates a second.
func (r issueResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Certs) / r.Elapsed.Seconds()
}

// CPUPerCert is the CA's CPU time per certificate.
func (r issueResult) CPUPerCert() time.Duration {
	if r.Certs == 0 {
		return 0
	}
	return r.CACPU / time.Duration(r.Certs)
}

// Percentile of the latencies; 0 without any.
func (r issueResult) Percentile(p float64) time.Duration { return percentile(r.Latencies, p) }

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// start runs clients until ctx ends (wait).
func (l *issueLoad) start(ctx context.Context, clients int) {
	for range clients {
		l.wg.Go(func() {
			for ctx.Err() == nil {
				l.issueOne(ctx)
			}
		})
	}
}

// wait waits for the clients to end.
func (l *issueLoad) wait() { l.wg.Wait() }

func (l *issueLoad) issueOne(ctx context.Context) {
	holder := fmt.Sprintf("%s-%d", l.prefix, l.seq.Add(1))
	req, err := issueRequest(holder, l.profiles)
	if err != nil {
		l.fail(err)
		return
	}
	// Each call has its own deadline: one in flight when the load stops
	// ends on its own, and is not counted as a failure.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	began := time.Now()
	resp, err := l.cl.Issue(callCtx, req)
	took := time.Since(began)
	if err == nil && len(resp.Certificates) != l.profiles {
		err = fmt.Errorf("%d certificates, want %d", len(resp.Certificates), l.profiles)
	}
	if err != nil {
		if ctx.Err() == nil {
			l.fail(err)
			time.Sleep(10 * time.Millisecond) // no busy loop against a refusing CA
		}
		return
	}
	l.requests.Add(1)
	l.certs.Add(int64(l.profiles))
	if l.recording.Load() {
		l.mu.Lock()
		l.latencies = append(l.latencies, took)
		l.mu.Unlock()
	}
}

func (l *issueLoad) fail(err error) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.firstErr == "" {
		l.firstErr = err.Error()
	}
}

// window measures for d: certificates, requests and failures counted as
// they end, the CPU time of the CA process pid and, when storeCPU is not
// nil, the store server's.
func (l *issueLoad) window(ctx context.Context, pid int, d time.Duration, storeCPU func() (time.Duration, error)) (issueResult, error) {
	if storeCPU == nil {
		storeCPU = func() (time.Duration, error) { return 0, nil }
	}
	l.mu.Lock()
	l.latencies = nil
	l.mu.Unlock()
	c0, r0, f0 := l.certs.Load(), l.requests.Load(), l.failed.Load()
	cpu0, err := procCPU(pid)
	if err != nil {
		return issueResult{}, err
	}
	st0, err := storeCPU()
	if err != nil {
		return issueResult{}, err
	}
	t0 := time.Now()
	l.recording.Store(true)
	select {
	case <-ctx.Done():
		return issueResult{}, ctx.Err()
	case <-time.After(d):
	}
	cpu1, err := procCPU(pid)
	st1, serr := storeCPU()
	t1 := time.Now()
	c1, r1, f1 := l.certs.Load(), l.requests.Load(), l.failed.Load()
	l.recording.Store(false)
	if err != nil {
		return issueResult{}, err
	}
	if serr != nil {
		return issueResult{}, serr
	}
	l.mu.Lock()
	lat := slices.Clone(l.latencies)
	first := l.firstErr
	l.mu.Unlock()
	slices.Sort(lat)
	return issueResult{Certs: c1 - c0, Requests: r1 - r0, Failed: f1 - f0, FirstError: first,
		Elapsed: t1.Sub(t0), CACPU: cpu1 - cpu0, StoreCPU: st1 - st0, Latencies: lat, LoadAvg: loadAvg()}, nil
}

// issueRequest is an Issue request of a self application for holder: AUTH,
// and with profiles 2 SIGN too, each with a fresh P-256 card key.
func issueRequest(holder string, profiles int) (*cav1.IssueRequest, error) {
	req := &cav1.IssueRequest{
		Municipality: testenv.Kiyose(),
		Holder: &cav1.Holder{HolderId: holder, Surname: "渡邊", GivenName: "鷗外", DateOfBirth: "1985-01-02", Sex: cav1.Sex_SEX_MALE,
			Address: "東京都清瀬市中里５丁目８４２番地"},
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
	}
	for i, p := range []cav1.Profile{cav1.Profile_PROFILE_AUTH, cav1.Profile_PROFILE_SIGN} {
		if i >= profiles {
			break
		}
		csr, err := testenv.NewCardCSR()
		if err != nil {
			return nil, err
		}
		req.Profiles = append(req.Profiles, &cav1.ProfileRequest{Profile: p, Csr: csr})
	}
	return req, nil
}

// clockTick is the unit of /proc/<pid>/stat's CPU times: USER_HZ, 100 on
// every Linux architecture Go runs on.
const clockTick = 10 * time.Millisecond

// procCPU is a process's user and system CPU time so far, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks).
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// childrenCPU is the CPU time so far of process pid and of its children
// (a PostgreSQL server: the postmaster and its backends, which the CA's
// pool keeps connected). A child that exited meanwhile is not counted.
func childrenCPU(pid int) (time.Duration, error) {
	total, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue // gone
		}
		i := strings.LastIndexByte(string(raw), ')')
		f := strings.Fields(string(raw[i+1:]))
		if i < 0 || len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		if cpu, err := procCPU(child); err == nil {
			total += cpu
		}
	}
	return total, nil
}

// loadAvg is the 1-minute load average, from /proc/loadavg; "?" if unknown.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(raw)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
