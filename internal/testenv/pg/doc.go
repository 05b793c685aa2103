// Package pg starts a throwaway PostgreSQL server for tests: Debian's
// postgresql package (deploy/dev/deps.sh installs it), a new cluster made
// by initdb in a temporary directory, run as the postgres user (through
// runuser when the tests run as root), listening on a Unix socket in that
// directory only, and stopped and removed when the test binary ends. It is
// the real server, never a stand-in (issue 12).
package pg
