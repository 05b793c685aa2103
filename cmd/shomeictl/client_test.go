package main

import (
	"os/user"
	"testing"
)

// TestLoginNameWithoutUSER: where $USER is unset (a container, a cron job),
// the operator's default name on a development CA is the process's user,
// not empty — an empty name is refused by the CA.
func TestLoginNameWithoutUSER(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		t.Fatalf("the process's user: %v", err)
	}
	t.Setenv("USER", "")
	if got := loginName(); got != u.Username || got == "" {
		t.Errorf("loginName() = %q with USER unset, want %q", got, u.Username)
	}
	t.Setenv("USER", "sato")
	if got := loginName(); got != "sato" {
		t.Errorf("loginName() = %q with USER=sato", got)
	}
}
