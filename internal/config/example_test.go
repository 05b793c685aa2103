package config

import (
	"os"
	"testing"
)

// TestExampleConfiguration keeps deploy/shomei.example.yaml, the documented
// reference of every setting, loadable.
func TestExampleConfiguration(t *testing.T) {
	f, err := os.Open("../../deploy/shomei.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := Decode(f, "/etc/shomei")
	if err != nil {
		t.Fatalf("the example configuration does not load: %v", err)
	}
	if len(c.Clients) != 1 || c.Server.GRPCListen != "127.0.0.1:8443" || !c.OCSPEnabled() {
		t.Fatalf("example configuration decoded as %+v", c)
	}
}
