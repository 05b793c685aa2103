package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/crypto/ocsp"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// attackerDialer dials from the loopback address source, an attacker's
// own.
func attackerDialer(source string) *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
}

func randByte() byte {
	var b [1]byte
	rand.Read(b[:])
	return b[0]
}

// postOutcome POSTs body as an OCSP request and names what came back:
// "HTTP 400", "OCSP successful", "OCSP tryLater", "reset", "timeout", ….
func postOutcome(ctx context.Context, client *http.Client, url string, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "error"
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	resp, err := client.Do(req)
	if err != nil {
		return netOutcome(err)
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "HTTP " + strconv.Itoa(resp.StatusCode) + ", body " + netOutcome(err)
	}
	if resp.StatusCode != http.StatusOK {
		out := "HTTP " + strconv.Itoa(resp.StatusCode)
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			out += " Retry-After"
		}
		return out
	}
	if err := checkResponse(der); err == nil {
		return "OCSP successful"
	}
	if _, err := ocsp.ParseResponse(der, nil); err != nil {
		if re, ok := errors.AsType[ocsp.ResponseError](err); ok {
			return "OCSP " + re.Status.String()
		}
	}
	return "HTTP 200, not OCSP"
}

// netOutcome names a transport error.
func netOutcome(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled at the end"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return "timeout"
	}
	return "error"
}

// issueGood issues an AUTH certificate for a fresh P-256 card key.
func issueGood(ctx context.Context, cl cav1.CertificateAuthorityClient, i int) (*x509.Certificate, error) {
	csr, err := testenv.NewCardCSR()
	if err != nil {
		return nil, err
	}
	resp, err := cl.Issue(ctx, &cav1.IssueRequest{
		Municipality: testenv.Kiyose(), Holder: &cav1.Holder{HolderId: fmt.Sprintf("BENCH-%d", i), DateOfBirth: "1985-01-02"},
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr}},
	})
	if err != nil {
		return nil, err
	}
	if len(resp.Certificates) != 1 {
		return nil, fmt.Errorf("%d certificates, want 1", len(resp.Certificates))
	}
	return x509.ParseCertificate(resp.Certificates[0].Der)
}

// askGood asks OCSP about cert and wants a verified "good".
func askGood(ctx context.Context, client *http.Client, httpAddr string, cert, issuer *x509.Certificate) error {
	der, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/ocsp", bytes.NewReader(der))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	r, err := ocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		return err
	}
	if r.Status != ocsp.Good {
		return fmt.Errorf("status %d, want good", r.Status)
	}
	return nil
}
