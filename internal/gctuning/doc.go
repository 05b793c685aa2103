// Package gctuning sets the garbage collector of Shomei's servers.
//
// Go collects whenever the heap has grown by GOGC percent (100 by default)
// since the last collection. Shomei's servers keep little live heap (the
// OCSP response cache, the latest CRLs, bbolt is a memory map) and allocate
// quickly under load: at 45,000 cached OCSP responses/s the collector ran
// several times a second, each mark phase taking one of the two CPUs of
// the machine measured, and that is what the slowest responses waited for
// (p99 at 64 concurrent requests 5.1–5.5 ms at GOGC=100, 4.2 ms at 400;
// docs/benchmarks.md). Memory is the cheaper resource here, so the servers
// default to DefaultPercent: the heap may grow to about five times what is
// live instead of twice.
//
// The standard GOGC and GOMEMLIMIT environment variables still rule: when
// GOGC is set, Apply leaves the collector as the runtime configured it.
package gctuning
