package ca

import "testing"

func TestLooksLikeIndividualNumber(t *testing.T) {
	for id, want := range map[string]bool{
		"123456789018":        true,  // twelve digits, valid check digit
		"123456789012":        true,  // twelve digits, whole id: refused regardless
		"1234-5678-9018":      true,  // grouped
		"1234 5678 9018":      true,  //
		"１２３４５６７８９０１８":        true,  // full-width
		"move-123456789018":   true,  // embedded, valid check digit
		"ev_1234-5678-9018_x": true,  //
		"move-202612061200":   false, // embedded, not a check digit
		"R-0001":              false,
		"20261206120000":      false, // fourteen digits
		"1234567890189":       false, // thirteen
		"12345678901":         false, // eleven
		"1234--5678-9018":     true,  // up to three separators between digits
		"1234 - 5678 - 9018":  true,  //
		"1234/5678/9018":      true,  // any punctuation
		"1234:5678:9018":      true,  //
		"(1234)5678,9018":     true,  //
		"１２３４／５６７８／９０１８":         true,  // full-width punctuation
		"1234----5678-9018":      false, // four separators end the run: 4 + 8 digits
		"東京都清瀬市中里五丁目１２番地":        false, // an address
		"event-1234567890180001": false,
		"":                       false,
	} {
		if got := looksLikeIndividualNumber(id); got != want {
			t.Errorf("looksLikeIndividualNumber(%q) = %v, want %v", id, got, want)
		}
	}
}
