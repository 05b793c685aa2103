// Package metricstest reads metrics for tests: what a Prometheus registry
// gathers or a /metrics page holds, every sample as one number under the
// key Prometheus writes it by (name{a="x",b="y"}, labels sorted by name).
// It is the one home of that reading; tests compare the maps it returns.
package metricstest
