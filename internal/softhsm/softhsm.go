package softhsm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ModuleEnv overrides where the SoftHSM2 PKCS#11 library is looked for.
const ModuleEnv = "SHOMEI_SOFTHSM2_MODULE"

// modulePaths are where Debian and other distributions install SoftHSM2.
var modulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
}

// Module returns the path of the SoftHSM2 PKCS#11 library.
func Module() (string, error) {
	if p := os.Getenv(ModuleEnv); p != "" {
		return p, nil
	}
	return firstExisting("the SoftHSM2 library (apt-get install softhsm2)", modulePaths)
}

// P11KitClientModule returns the path of p11-kit's remote client module.
func P11KitClientModule() (string, error) {
	paths, _ := filepath.Glob("/usr/lib/*/pkcs11/p11-kit-client.so")
	paths = append(paths, "/usr/lib/pkcs11/p11-kit-client.so", "/usr/lib64/pkcs11/p11-kit-client.so")
	return firstExisting("p11-kit-client.so (apt-get install p11-kit-modules)", paths)
}

func firstExisting(what string, paths []string) (string, error) {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("softhsm: cannot find %s; looked in %v", what, paths)
}

// Dir is a SoftHSM2 configuration and token directory.
type Dir struct {
	Root string // the directory
	Conf string // its softhsm2.conf
}

// NewDir creates (or reuses) a SoftHSM2 set-up under root: root/softhsm2.conf
// pointing at root/tokens.
func NewDir(root string) (*Dir, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	tokens := filepath.Join(root, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return nil, fmt.Errorf("softhsm: %w", err)
	}
	d := &Dir{Root: root, Conf: filepath.Join(root, "softhsm2.conf")}
	conf := fmt.Sprintf("# Written by Shomei: a private SoftHSM2 token directory.\n"+
		"directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(d.Conf, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("softhsm: %w", err)
	}
	return d, nil
}

// Setenv points this process's SoftHSM2 at the directory. Call it before the
// module is first initialised.
func (d *Dir) Setenv() error { return os.Setenv("SOFTHSM2_CONF", d.Conf) }

// Environ returns os.Environ with SOFTHSM2_CONF pointing at the directory,
// for child processes.
func (d *Dir) Environ() []string { return append(os.Environ(), "SOFTHSM2_CONF="+d.Conf) }

// InitToken initialises a new token with the label and PINs in the first free
// slot, using softhsm2-util.
func (d *Dir) InitToken(label, soPIN, userPIN string) error {
	if label == "" || soPIN == "" || userPIN == "" {
		return errors.New("softhsm: a token needs a label, an SO PIN and a user PIN")
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		return fmt.Errorf("softhsm: softhsm2-util not found (apt-get install softhsm2): %w", err)
	}
	// softhsm2-util takes the PINs as arguments; this is a development and
	// test token whose PINs are throwaway.
	cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--so-pin", soPIN, "--pin", userPIN)
	cmd.Env = d.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("softhsm: initialising token %q: %w: %s", label, err, out)
	}
	return nil
}
