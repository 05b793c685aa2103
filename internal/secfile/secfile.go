package secfile

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrExposed is wrapped by every refusal of a file others may read.
var ErrExposed = errors.New("group or others may access it")

// maxSize bounds a secret file: PINs, tokens and private keys are small.
const maxSize = 1 << 20

// Read returns the contents of the secret file at path, what naming it in
// messages ("PIN file", "client token file"). It refuses a file with any
// group or other permission bit, checked on the open file, and one in a
// directory group or others may write (CheckDir).
func Read(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := private(path, what, fi); err != nil {
		return nil, err
	}
	if err := CheckDir(path, what); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("%s %s: larger than %d bytes; not a secret file", what, path, maxSize)
	}
	return b, nil
}

// Check refuses the file at path if its group or others may access it. A
// missing file passes: whoever creates it creates it private.
func Check(path, what string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return private(path, what, fi)
}

// CheckDir refuses the directory holding path if group or others may
// write to it (and so replace the file): the directory of path as named
// and, when path is a symbolic link, the directory of the file it leads
// to. A missing directory passes.
func CheckDir(path, what string) error {
	if err := checkDir(filepath.Dir(path), what); err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(path); err == nil && filepath.Dir(real) != filepath.Dir(path) {
		return checkDir(filepath.Dir(real), what)
	}
	return nil
}

func checkDir(dir, what string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s directory: %w", what, err)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s directory %s has mode %04o: group or others may write to it; chmod go-w %s", what, dir, perm, dir)
	}
	return nil
}

func private(path, what string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s %s has mode %04o: %w; chmod 600 %s", what, path, perm, ErrExposed, path)
	}
	return nil
}

// LoadKeyPair reads a PEM certificate (chain) and its private key, refusing
// a key file its group or others may read. Every binary loads its TLS keys,
// server or client, through it.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	key, err := Read(keyFile, "TLS private key file")
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cert, key)
}
