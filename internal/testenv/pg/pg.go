package pg

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	// Dir holds the cluster's data (Dir/data) and its socket (Dir).
	Dir string
	// Socket is the directory of the server's Unix socket: a libpq host.
	Socket string
	bin    string
	runAs  []string // the runuser prefix, when the tests run as root
}

// BinDir finds the server's programs: the newest /usr/lib/postgresql/N/bin
// with initdb and pg_ctl.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if exists(filepath.Join(d, "initdb")) && exists(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errors.New("pg: no PostgreSQL server under /usr/lib/postgresql/*/bin: install Debian's postgresql package (make deps)")
}

// version is the major version in a /usr/lib/postgresql/N/bin path.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Start makes a new cluster under a new directory in parent (the system's
// temporary directory when empty) and starts it. As root the server runs as
// the postgres user, which gets the directory; otherwise as the caller.
func Start(parent string) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	reap(parent, bin)
	dir, err := os.MkdirTemp(parent, "shomei-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{Dir: dir, Socket: dir, bin: bin}
	if os.Geteuid() == 0 {
		pgUser, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pg: running as root needs the postgres user of Debian's package: %w", err)
		}
		uid, _ := strconv.Atoi(pgUser.Uid)
		gid, _ := strconv.Atoi(pgUser.Gid)
		// The server reaches its directory through the temporary
		// directory's parents; the directory itself is the server's only.
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg: initdb: %w\n%s", err, out)
	}
	// No TCP at all, a socket in the cluster's own directory, and no
	// durability the tests do not need (the product's settings are its
	// own).
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off", dir)
	if out, err := c.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg: pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return c, nil
}

// ownerFile, in a cluster's directory, holds the pid of the test binary
// that started it.
const ownerFile = "owner.pid"

// reap stops and removes the clusters under parent whose test binary died
// without stopping them (a panicking test skips TestMain's cleanup), so
// that servers do not pile up across runs.
func reap(parent, bin string) {
	if parent == "" {
		parent = os.TempDir()
	}
	dirs, _ := filepath.Glob(filepath.Join(parent, "shomei-pg-*"))
	for _, dir := range dirs {
		raw, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // alive, or not ours to judge
		}
		c := &Cluster{Dir: dir, bin: bin}
		if os.Geteuid() == 0 {
			c.runAs = []string{"runuser", "-u", "postgres", "--"}
		}
		_, _ = c.run("pg_ctl", "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "-t", "30", "stop")
		os.RemoveAll(dir)
	}
}

// run runs one of the server's programs as the server's user.
func (c *Cluster) run(program string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, c.runAs...), filepath.Join(c.bin, program)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// DSN is a libpq connection string for database db on the cluster, as
// the superuser postgres, over the socket.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("host=%s user=postgres dbname=%s sslmode=disable", c.Socket, db)
}

// Psql runs SQL with psql on database db and returns its output (tuples
// only, unaligned), as a client that nobody here wrote sees the server.
func (c *Cluster) Psql(db, sql string) (string, error) {
	cmd := exec.Command("psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", c.Socket, "-U", "postgres", "-d", db, "-c", sql)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Stop stops the server (fast shutdown, waiting up to 30 s) and removes
// its directory.
func (c *Cluster) Stop() error {
	out, err := c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "fast", "-w", "-t", "30", "stop")
	if err != nil {
		err = fmt.Errorf("pg: pg_ctl stop: %w\n%s", err, out)
	}
	// Give a stopped server's last file writes a moment on slow disks.
	for i := 0; i < 10; i++ {
		if rerr := os.RemoveAll(c.Dir); rerr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}
