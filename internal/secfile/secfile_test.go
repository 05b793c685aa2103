package secfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadRefusesExposedFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o640, false}, {0o604, false}, {0o644, false}, {0o660, false}} {
		path := filepath.Join(dir, tc.mode.String())
		if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		b, err := Read(path, "PIN file")
		if tc.ok {
			if err != nil || string(b) != "s3cret\n" {
				t.Errorf("mode %v: Read = %q, %v", tc.mode, b, err)
			}
			if err := Check(path, "store"); err != nil {
				t.Errorf("mode %v: Check = %v", tc.mode, err)
			}
			continue
		}
		if !errors.Is(err, ErrExposed) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "PIN file") {
			t.Errorf("mode %v: Read = %v; want ErrExposed naming the file", tc.mode, err)
		}
		if err := Check(path, "store"); !errors.Is(err, ErrExposed) {
			t.Errorf("mode %v: Check = %v", tc.mode, err)
		}
	}
	if err := Check(filepath.Join(dir, "missing"), "store"); err != nil {
		t.Errorf("Check of a missing file: %v", err)
	}
}

func TestCheckDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(filepath.Join(dir, "shomei.db"), "store"); err != nil {
		t.Errorf("0755: %v", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(filepath.Join(dir, "shomei.db"), "store"); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("0777: %v", err)
	}
}
