package main

import (
	"os"
	"testing"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
)

// certificateStates counts the certificate records of a stopped CA's store by state.
func certificateStates(t testing.TB, path string) map[string]int {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	states := map[string]int{}
	if err := st.ForEachCertificate(func(c *storev1.Certificate) error {
		states[c.State.String()]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return states
}

func mkdir(p string) error { return os.MkdirAll(p, 0o700) }
