package ca

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/validity"
)

// Renewal notices 有効期限通知書 (seed 002): a municipality mails each
// holder a notice about three months before the certificate expires,
// when its renewal window (R-V3) opens.

// Bounds of a renewal notices request.
const (
	// MaxNoticeMonths bounds "within": at most 12 months ahead.
	MaxNoticeMonths = 12
	// MaxNoticeSpan is the same bound for a duration.
	MaxNoticeSpan = 366 * 24 * time.Hour
	// MaxRenewalNotices bounds one answer; a larger one asks for a shorter
	// span (100,000 notices are about 15 MB).
	MaxRenewalNotices = 100_000
	// noticePage is how many index entries one read transaction reads.
	noticePage = 5000
)

// MunicipalityCertificates is the store's walk of one municipality's
// certificates (*store.Store).
type MunicipalityCertificates interface {
	MunicipalityCertificates(municipality string, after []byte, limit int, fn func(*storev1.Certificate) error) ([]byte, error)
}

// RenewalNotice is one certificate due for a renewal notice.
type RenewalNotice struct {
	Serial      []byte
	HolderID    string
	Profile     storev1.Profile
	NotAfter    time.Time // in Japan time
	WindowOpens time.Time // 00:00 JST of the day the window opens
}

// japan is ca/validity's Japan time zone.
var japan = validity.Location()

// RenewalNotices returns the certificates of municipality, ISSUED, not
// revoked and not expired at now, whose renewal window (R-V3,
// validity.RenewalWindowOpens) opens on or before the day within after
// now's Japan date (windows already open included), ordered by window
// opening, then serial. within is a Go duration ("2160h") or "<n>mo"
// (calendar months; a day the month lacks is its last day), positive and
// at most 12 months. The store does not record whether a holder lives
// abroad (that is a field of each request), so every window is the
// 3-month one: a holder abroad may renew earlier, from a year before.
//
// The answer holds holder ids (it is for the mailing); callers never log
// it (R-P4).
func RenewalNotices(src MunicipalityCertificates, municipality, within string, now time.Time) ([]RenewalNotice, error) {
	vs := &violations{}
	validateMunicipality(vs, Municipality{Code: municipality}, false)
	today := validity.DateOf(now)
	until, ok := noticeHorizon(today, now, within)
	if !ok {
		vs.add("within", "R-V3", "must be a positive Go duration (e.g. 2160h) or <n>mo (e.g. 3mo), at most %d months", MaxNoticeMonths)
	}
	if err := vs.err(KindInvalid); err != nil {
		return nil, err
	}
	var out []RenewalNotice
	var after []byte
	for {
		var tooMany bool
		last, err := src.MunicipalityCertificates(municipality, after, noticePage, func(rec *storev1.Certificate) error {
			n, due := noticeFor(rec, now, until)
			if !due {
				return nil
			}
			if len(out) == MaxRenewalNotices {
				tooMany = true
				return errStop
			}
			out = append(out, n)
			return nil
		})
		if tooMany {
			return nil, refuse(KindPrecondition, "within", "R-V3", "more than %d certificates are due: ask for a shorter span", MaxRenewalNotices)
		}
		if err != nil {
			return nil, err
		}
		if last == nil {
			break
		}
		after = last
	}
	slices.SortFunc(out, func(a, b RenewalNotice) int {
		return cmp.Or(a.WindowOpens.Compare(b.WindowOpens), cmp.Compare(len(a.Serial), len(b.Serial)), bytes.Compare(a.Serial, b.Serial))
	})
	return out, nil
}

// errStop ends a walk early.
var errStop = stopError{}

type stopError struct{}

func (stopError) Error() string { return "stopped" }

// noticeFor is rec's notice, if its window opens on or before until and
// it is issued, unrevoked and unexpired at now.
func noticeFor(rec *storev1.Certificate, now time.Time, until validity.Date) (RenewalNotice, bool) {
	if rec.GetState() != storev1.CertState_CERT_STATE_ISSUED || rec.GetRevocation() != nil || rec.GetNotAfter() == nil {
		return RenewalNotice{}, false
	}
	notAfter := rec.GetNotAfter().AsTime()
	if validity.Expired(notAfter, now) {
		return RenewalNotice{}, false
	}
	expiry, err := validity.ParseDate(rec.GetExpiryDate())
	if err != nil {
		expiry = validity.DateOf(notAfter)
	}
	opens := validity.RenewalWindowOpens(expiry, false)
	if opens.After(until) {
		return RenewalNotice{}, false
	}
	return RenewalNotice{Serial: rec.GetSerial(), HolderID: rec.GetHolderId(), Profile: rec.GetProfile(),
		NotAfter: notAfter.In(japan), WindowOpens: opens.Start()}, true
}

// noticeHorizon is the last day a window may open on: today plus within.
func noticeHorizon(today validity.Date, now time.Time, within string) (validity.Date, bool) {
	if len(within) > 16 {
		return validity.Date{}, false
	}
	if n, ok := strings.CutSuffix(within, "mo"); ok {
		months, err := strconv.Atoi(n)
		if err != nil || months < 1 || months > MaxNoticeMonths || n != strconv.Itoa(months) {
			return validity.Date{}, false
		}
		return today.AddMonths(months), true
	}
	d, err := time.ParseDuration(within)
	if err != nil || d <= 0 || d > MaxNoticeSpan {
		return validity.Date{}, false
	}
	return validity.DateOf(now.Add(d)), true
}
