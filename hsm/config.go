package hsm

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/shomei-pki/shomei/internal/secfile"
)

// Config says which PKCS#11 module and token to use and how.
type Config struct {
	// Module is the path of the PKCS#11 library, for example
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// TokenLabel selects the token; exactly one token must carry it.
	TokenLabel string
	// PIN is the user PIN. Load it with PINSource.Read; never take it from a
	// command-line flag.
	PIN string
	// PoolSize bounds the sessions open at once, and so the signatures in
	// flight. Zero means the number of CPUs.
	PoolSize int
	// WaitTimeout bounds how long an operation waits for a free session
	// before failing with ErrPoolExhausted. Zero means 5 seconds.
	//
	// It does not bound a wait for the module: while a re-initialisation
	// of the module is in progress (after a device error seen by any Token
	// on the same library) operations wait for it, and it waits for every
	// PKCS#11 call in flight, so an operation can take longer than
	// WaitTimeout, or outlast its context.
	WaitTimeout time.Duration
	// RetryInterval paces recovery when the token cannot be reached. After
	// a failed attempt to reconnect (find the token, log in), operations
	// within RetryInterval fail at once with ErrTokenUnavailable wrapping
	// that attempt's error, without trying again; the first operation
	// after it tries again. It is also the least time between two
	// re-initialisations of the module, a time that doubles after each one
	// that does not bring the token back, up to 5 seconds (or
	// RetryInterval, if longer). Zero means 200 milliseconds.
	RetryInterval time.Duration
}

func (c *Config) setDefaults() error {
	if c.Module == "" {
		return errors.New("hsm: config: module (path of the PKCS#11 library) is required")
	}
	if c.TokenLabel == "" {
		return errors.New("hsm: config: token label is required")
	}
	if c.PIN == "" {
		return errors.New("hsm: config: PIN is empty (set a PIN file or a PIN environment variable)")
	}
	if c.PoolSize < 0 {
		return fmt.Errorf("hsm: config: pool size %d is negative", c.PoolSize)
	}
	if c.PoolSize == 0 {
		c.PoolSize = runtime.NumCPU()
	}
	if c.WaitTimeout < 0 || c.RetryInterval < 0 {
		return errors.New("hsm: config: timeouts must not be negative")
	}
	if c.WaitTimeout == 0 {
		c.WaitTimeout = 5 * time.Second
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = 200 * time.Millisecond
	}
	return nil
}

// PINSource says where the PIN comes from: a file (its first line) or an
// environment variable. Exactly one must be set. There is deliberately no way
// to give a PIN as a command-line argument, where other users of the machine
// could read it.
type PINSource struct {
	// File holds the PIN (its first line); it must be private to its
	// owner (mode 0600 or stricter).
	File string `yaml:"pin_file"`
	// Env names the environment variable holding the PIN; it is removed
	// from the environment once read.
	Env string `yaml:"pin_env"`
}

// Read returns the PIN. A PIN file must be private to its owner (mode
// 0600 or stricter); a PIN environment variable is removed from the
// environment once read, so Read succeeds once per process with it.
func (p PINSource) Read() (string, error) {
	switch {
	case p.File != "" && p.Env != "":
		return "", errors.New("hsm: give the PIN by a file or an environment variable, not both")
	case p.File != "":
		// A PIN file others may read is refused (issue 9 item 12).
		b, err := secfile.Read(p.File, "PIN file")
		if err != nil {
			return "", fmt.Errorf("hsm: reading the PIN file: %w", err)
		}
		pin, _, _ := strings.Cut(string(b), "\n")
		pin = strings.TrimRight(pin, "\r")
		if pin == "" {
			return "", fmt.Errorf("hsm: the PIN file %s is empty", p.File)
		}
		return pin, nil
	case p.Env != "":
		pin, ok := os.LookupEnv(p.Env)
		if !ok || pin == "" {
			return "", fmt.Errorf("hsm: the PIN environment variable %s is not set", p.Env)
		}
		// Read once: the variable is cleared, so that the PKCS#11 module,
		// any process it starts and anything reading os.Environ later do
		// not find the PIN (issue 9 item 12). (The kernel's copy of the
		// initial environment, /proc/<pid>/environ, is readable by the
		// same user only, like the PIN file.) The Token keeps the PIN in
		// memory for its logins.
		if err := os.Unsetenv(p.Env); err != nil {
			return "", fmt.Errorf("hsm: clearing the PIN environment variable %s: %w", p.Env, err)
		}
		return pin, nil
	default:
		return "", errors.New("hsm: no PIN source: set a PIN file or a PIN environment variable")
	}
}
