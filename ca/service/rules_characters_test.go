package service_test

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// R-P5: characters outside JIS X 0208/0212 are refused unless substituted;
// the substitution map marks them.
func TestCharacters(t *testing.T) {
	t.Parallel()
	h := start(t, tokenCharacters, options{})
	const born = "1980-03-15"
	app := application(self, cardLater)
	takahashi := named("p5-takahashi", born, "髙橋", "一郎")
	yoshio := named("p5-yoshio", born, "田中", "𠮷男")
	address := resident("p5-address", born)
	address.Address = "東京都清瀬市髙田一丁目１番"
	subs := func(req *cav1.IssueRequest, name, addr []*cav1.Substitution) *cav1.IssueRequest {
		req.NameSubstitutions, req.AddressSubstitutions = name, addr
		return req
	}
	sub := func(pos uint32, char string) []*cav1.Substitution {
		return []*cav1.Substitution{{Position: pos, Character: char}}
	}
	// signed checks the SIGN certificate's name or address and its
	// substitution map.
	signed := func(oid, mapOID string, text, smap string) func(*testing.T, issued) {
		return func(t *testing.T, out issued) {
			values := map[string]string{}
			for _, n := range otherNames(t, out.x509[0]) {
				values[n.oid.String()] = n.value
			}
			if values[oid] != text || values[mapOID] != smap {
				t.Errorf("certificate has %q with map %q, want %q with map %q", values[oid], values[mapOID], text, smap)
			}
		}
	}

	h.run(t, []step{
		{name: "髙 in the surname", req: request(takahashi, app, sign(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.surname", "R-P5", []string{"髙", "U+9AD9", "position 0", "高"}}}},
		{name: "﨑 in the surname", req: request(named("p5-yamasaki", born, "山﨑", "花子"), app, sign(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.surname", "R-P5", []string{"﨑", "U+FA11", "position 1", "崎"}}}},
		{name: "𠮷 in the given name", req: request(yoshio, app, sign(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.given_name", "R-P5", []string{"𠮷", "U+20BB7", "position 0", "position 3 in name_substitutions", "吉"}}}},
		{name: "two characters", req: request(named("p5-two", born, "髙﨑", "一郎"), app, sign(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{
				{"holder.surname", "R-P5", []string{"髙", "position 0"}}, {"holder.surname", "R-P5", []string{"﨑", "position 1"}}}},
		{name: "髙 in the address", req: request(address, app, sign(holderKeys.csr(t))),
			code: codes.InvalidArgument, want: []violation{{"holder.address", "R-P5", []string{"髙", "position 6"}}}},
		{name: "substitute out of range", req: subs(request(takahashi, app, sign(holderKeys.csr(t))), sub(5, "高"), nil),
			code: codes.InvalidArgument, want: []violation{{"name_substitutions[0].position", "R-P5", nil}, {"holder.surname", "R-P5", nil}}},
		{name: "substitute of two characters", req: subs(request(takahashi, app, sign(holderKeys.csr(t))), sub(0, "高木"), nil),
			code: codes.InvalidArgument, want: []violation{{"name_substitutions[0].character", "R-P5", nil}, {"holder.surname", "R-P5", nil}}},
		{name: "substitute outside JIS X 0208/0212", req: subs(request(takahashi, app, sign(holderKeys.csr(t))), sub(0, "﨑"), nil),
			code: codes.InvalidArgument, want: []violation{{"name_substitutions", "R-P5", nil}}},
		{name: "AUTH carries no name", req: request(takahashi, app, auth(holderKeys.csr(t))), expiry: []string{"2031-03-15"}},
		{name: "JIS X 0208 level 2 and JIS X 0212", req: request(named("p5-watanabe", born, "渡邊", "鷗外"), app, sign(holderKeys.csr(t))),
			expiry: []string{"2031-03-15"}},
		{name: "齋藤", req: request(named("p5-saito", born, "齋藤", "健"), app, sign(holderKeys.csr(t))), expiry: []string{"2031-03-15"}},
		{name: "高 for 髙", req: subs(request(takahashi, app, sign(holderKeys.csr(t))), sub(0, "高"), nil),
			check: signed(oidName.String(), oidNameMap.String(), "高橋\u3000一郎", "10000")},
		{name: "吉 for 𠮷", req: subs(request(yoshio, app, sign(holderKeys.csr(t))), sub(3, "吉"), nil),
			check: signed(oidName.String(), oidNameMap.String(), "田中\u3000吉男", "00010")},
		{name: "高 for 髙 in the address", req: subs(request(address, app, sign(holderKeys.csr(t))), nil, sub(6, "高")),
			check: all(
				signed(oidAddress.String(), oidAddressMap.String(), "東京都清瀬市高田一丁目１番", "0000001000000"),
				signed(oidName.String(), oidNameMap.String(), "山田\u3000太郎", "00000"))},
	})

	cases := []struct {
		text     string
		ok       bool
		offences []*cav1.Offence
	}{
		{"髙橋\u3000一郎", false, []*cav1.Offence{{Position: 0, Character: "髙", CodePoint: "U+9AD9", Suggestions: []string{"高"}}}},
		{"山﨑\u3000花子", false, []*cav1.Offence{{Position: 1, Character: "﨑", CodePoint: "U+FA11", Suggestions: []string{"崎"}}}},
		{"田中\u3000𠮷男", false, []*cav1.Offence{{Position: 3, Character: "𠮷", CodePoint: "U+20BB7", Suggestions: []string{"吉"}}}},
		{"渡邊\u3000鷗外", true, nil},
		{"東京都清瀬市中里五丁目１２番地", true, nil},
	}
	for _, tc := range cases {
		t.Run("CheckCharacters "+tc.text, func(t *testing.T) {
			resp, err := h.client.CheckCharacters(context.Background(), &cav1.CheckCharactersRequest{Text: tc.text})
			if err != nil {
				t.Fatal(describe(err))
			}
			if resp.Ok != tc.ok || len(resp.Offences) != len(tc.offences) {
				t.Fatalf("ok %v, offences %v; want ok %v, %v", resp.Ok, resp.Offences, tc.ok, tc.offences)
			}
			for i, o := range resp.Offences {
				w := tc.offences[i]
				if o.Position != w.Position || o.Character != w.Character || o.CodePoint != w.CodePoint || !slices.Equal(o.Suggestions, w.Suggestions) {
					t.Errorf("offence %v, want %v", o, w)
				}
			}
		})
	}
	t.Run("CheckCharacters empty", func(t *testing.T) {
		_, err := h.client.CheckCharacters(context.Background(), &cav1.CheckCharactersRequest{})
		checkRefusal(t, err, codes.InvalidArgument, []violation{{"text", "R-P5", nil}})
	})
}
