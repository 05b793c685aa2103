// Package deploy holds what runs Shomei in production and the checks that
// keep it true to the binaries:
//
//   - systemd/: the units shomei-ca.service and shomei-ocsp.service (a
//     user of their own each, read-only system, no capabilities, state in
//     /var/lib/shomei and /var/lib/shomei-ocsp, configuration in
//     /etc/shomei and /etc/shomei-ocsp) and their sysusers.d users;
//   - prometheus/: recording and alert rules (shomei.rules.yml) with the
//     `promtool test rules` unit tests that fire and do not fire each
//     alert (tests/);
//   - grafana/: the dashboard shomei.json;
//   - the example configurations shomei.example.yaml and
//     shomei-ocsp.example.yaml, and dev/ (the development HSM and the
//     system packages).
//
// The files are embedded (FS). DashboardMetrics lists every metric family
// a dashboard query or a rule expression names, parsed with Prometheus's
// own PromQL parser, so that a test can check each against a running
// binary's /metrics: a query that names a metric no binary exports shows
// nothing, and an alert on it never fires.
//
// The tests check the units with systemd-analyze verify (against the real
// binaries, built into a scratch root) and systemd-analyze security
// (exposure at most MaxExposure), the rules with promtool check rules and
// promtool test rules, and the users with systemd-sysusers; docs/
// deployment.md says how to install them.
package deploy
