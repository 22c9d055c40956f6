package srm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/internal/testdb"

	"github.com/dynamo-go/dynamo/srm/client"
)

func TestSpaceReservation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d *db.DB) {
		se := startSE(t, d, func(c *Config) { c.Areas[0].OnlineSizeLimit = 1000 })
		c, hc, S := clientFor(t, se)
		ctx := context.Background()
		area := se.Namespace().Areas()[0]
		call := func(op, inner string) any {
			t.Helper()
			resp, err := se.dispatch(&call{ctx: ctx, id: identityOf(t, se)}, op, mustNode(t, op, inner))
			must(t, err)
			return resp
		}
		reserve := func(guar, total string) reserveSpaceResponse {
			return call("srmReserveSpace", "<retentionPolicyInfo><retentionPolicy>REPLICA</retentionPolicy></retentionPolicyInfo>"+
				"<desiredSizeOfGuaranteedSpace>"+guar+"</desiredSizeOfGuaranteedSpace><desiredSizeOfTotalSpace>"+total+"</desiredSizeOfTotalSpace>"+
				"<userSpaceTokenDescription>mine</userSpaceTokenDescription>").(reserveSpaceResponse)
		}
		r1 := reserve("600", "600")
		if r1.ReturnStatus.StatusCode != "SRM_SUCCESS" || r1.SpaceToken == "" || area.Free() != 400 {
			t.Fatalf("reserve 600: %+v, free %d", r1, area.Free())
		}
		if r := reserve("500", "500"); r.ReturnStatus.StatusCode != "SRM_NO_FREE_SPACE" {
			t.Errorf("reserve beyond free: %+v", r)
		}
		if r := reserve("100", "500"); r.ReturnStatus.StatusCode != "SRM_LOWER_SPACE_GRANTED" || *r.TotalReserved != 400 {
			t.Errorf("partial grant: %+v", r)
		} else {
			call("srmReleaseSpace", "<spaceToken>"+r.SpaceToken+"</spaceToken>")
		}
		if r := call("srmReserveSpace", "<retentionPolicyInfo><retentionPolicy>CUSTODIAL</retentionPolicy></retentionPolicyInfo><desiredSizeOfGuaranteedSpace>1</desiredSizeOfGuaranteedSpace>").(reserveSpaceResponse); r.ReturnStatus.StatusCode != "SRM_NOT_SUPPORTED" {
			t.Errorf("unserved retention policy: %+v", r)
		}
		// Without the token only the unreserved 400 bytes are available.
		if _, _, err := c.PutTURL(ctx, S+"plain", 500, false, "https"); !errors.Is(err, client.ErrNoSpace) {
			t.Errorf("put over the unreserved space: %v", err)
		}
		put := func(name string, size int) (string, error) {
			body := "<arrayOfFileRequests><requestArray><targetSURL>" + S + name + "</targetSURL><expectedFileSize>" + itoa(int64(size)) +
				"</expectedFileSize></requestArray></arrayOfFileRequests><targetSpaceToken>" + r1.SpaceToken + "</targetSpaceToken>" +
				"<transferParameters><arrayOfTransferProtocols><stringArray>https</stringArray></arrayOfTransferProtocols></transferParameters>"
			resp := call("srmPrepareToPut", body).(putResponse)
			req := &client.Request{Token: resp.RequestToken, Type: "srmPrepareToPut", Code: resp.ReturnStatus.StatusCode}
			if err := c.Wait(ctx, req); err != nil {
				return "", err
			}
			if err := req.Files[0].Err("put", "SRM_SPACE_AVAILABLE"); err != nil {
				return "", err
			}
			hresp, _ := httpDo(t, hc, "PUT", req.Files[0].TURL, []byte(strings.Repeat("x", size)))
			if hresp.StatusCode != 201 {
				t.Fatalf("PUT: %d", hresp.StatusCode)
			}
			_, err := c.PutDone(ctx, req.Token, S+name)
			return req.Token, err
		}
		// Use up the unreserved space first: the reservation must still work.
		_, tok, err := c.PutTURL(ctx, S+"filler", 400, false, "https")
		must(t, err)
		r := &client.Request{Token: tok, Type: "srmPrepareToPut"}
		must(t, c.Status(ctx, r))
		if hresp, _ := httpDo(t, hc, "PUT", r.Files[0].TURL, []byte(strings.Repeat("f", 400))); hresp.StatusCode != 201 {
			t.Fatalf("filler PUT: %d", hresp.StatusCode)
		}
		_, err = c.PutDone(ctx, tok, S+"filler")
		must(t, err)
		if area.Free() != 0 {
			t.Fatalf("free after filler = %d", area.Free())
		}
		if _, err := put("in-space", 300); err != nil {
			t.Fatal(err)
		}
		md := call("srmGetSpaceMetaData", "<arrayOfSpaceTokens><stringArray>"+r1.SpaceToken+"</stringArray></arrayOfSpaceTokens>").(spaceMetaDataResponse)
		if d := md.Spaces.Items[0]; *d.UnusedSize != 300 || *d.TotalSize != 600 {
			t.Errorf("metadata after a 300-byte file: %+v", d)
		}
		if area.Free() != 0 || area.Used() != 700 {
			t.Errorf("area free %d used %d, want 0 and 700", area.Free(), area.Used())
		}
		if _, err := put("too-big", 400); !errors.Is(err, client.ErrNoSpace) {
			t.Errorf("put beyond the reservation: %v", err)
		}
		toks := call("srmGetSpaceTokens", "<userSpaceTokenDescription>mine</userSpaceTokenDescription>").(spaceTokensResponse)
		if toks.Tokens == nil || len(toks.Tokens.Items) != 1 || toks.Tokens.Items[0] != r1.SpaceToken {
			t.Errorf("GetSpaceTokens: %+v", toks)
		}
		if st := call("srmReleaseSpace", "<spaceToken>"+r1.SpaceToken+"</spaceToken>").(returnOnly); st.ReturnStatus.StatusCode != "SRM_SUCCESS" {
			t.Errorf("release: %+v", st)
		}
		if area.Free() != 300 {
			t.Errorf("free after release = %d, want 300", area.Free())
		}
		if st := call("srmReleaseSpace", "<spaceToken>DEFAULT</spaceToken>").(returnOnly); st.ReturnStatus.StatusCode != "SRM_INVALID_REQUEST" {
			t.Errorf("release of a static token: %+v", st)
		}
		if _, err := put("after-release", 10); err == nil || !strings.Contains(err.Error(), "unknown space token") {
			t.Errorf("put into a released space: %v", err)
		}
	})
}
