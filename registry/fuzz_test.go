package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/dynamo-go/dynamo/inventory"
)

// FuzzDecodeDynamoInject: POST /data/inventory/inject takes our injection
// document or Dynamo's. Whatever the body, it is a document or a bad
// request (400 with a message), never a panic; a Dynamo document becomes
// one of ours that our own strict decoder reads back unchanged.
func FuzzDecodeDynamoInject(f *testing.F) {
	f.Add([]byte(`{"site": [{"name": "T2_D", "host": "se.d", "storage_type": "DISK", "status": "READY"}], "group": [{"name": "Dyn", "olevel": "Block"}],
"dataset": [{"name": "/D/R-v1/RAW", "status": "VALID", "data_type": "data", "blocks": [{"name": "x1", "files": [{"name": "/store/d/1", "size": 5}]}]}],
"datasetreplica": [{"dataset": "/D/R-v1/RAW", "site": "T2_D", "group": "Dyn", "blockreplicas": [{"block": "x1"}]}]}`))
	f.Add([]byte(`{"sites":[{"name":"T2_A","storage_type":"disk","status":"ready"}]}`))
	f.Add([]byte(`{"site": [{"name": "T2_D", "storage_type": "FLOPPY"}]}`))
	f.Add([]byte(`{"dataset": [{"name": "/D/R-v1/RAW", "blocks": [{"name": "x1", "files": [{"size": -5}]}]}], "extra": 1}`))
	f.Add([]byte(`[1, 2]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := decodeDynamoInject(b)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) || err.Error() == "" {
				t.Fatalf("error %v is not a bad request with a message", err)
			}
			return
		}
		ours, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("converted document does not encode: %v", err)
		}
		again, err := inventory.DecodeInjectDoc(bytes.NewReader(ours))
		if err != nil {
			t.Fatalf("converted document %s is refused by the inventory's decoder: %v", ours, err)
		}
		if b2, _ := json.Marshal(again); !bytes.Equal(ours, b2) {
			t.Fatalf("round trip changed the document:\n%s\n%s", ours, b2)
		}
	})
}

// FuzzRequestBodies: every JSON body the REST API decodes goes through the
// one strict decoder (apierr). Whatever the body, the result is a value or
// a bad request (or too large) with a message, never a panic; a value that
// decodes encodes to a body that decodes to the same value.
func FuzzRequestBodies(f *testing.F) {
	bodies := []func() any{
		func() any { return new(CopyRequestBody) },
		func() any { return new(DeletionRequestBody) },
		func() any { return new(LockBody) },
		func() any { return new(UnlockBody) },
	}
	for i, s := range []string{
		`{"items": ["/A/B/RAW", "/A/B/RAW#b1"], "sites": ["T2_*"], "group": "AnalysisOps", "n": 2}`,
		`{"items": ["/A/B/RAW"], "sites": ["T2_A"]}`,
		`{"item": "/A/*/AOD*", "expires": "2099-03-01", "sites": ["T2_A"], "comment": "hold"}`,
		`{"lockids": [1, 2], "created_before": 1700000000, "service": "detox"}`,
		`{"items": "/A/B/RAW"}`,
		`{"item": "/A/*", "expires": "yesterday"}`,
		`{"lockids": [1], "bogus": true} {}`,
	} {
		f.Add(uint8(i%len(bodies)), []byte(s))
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		mk := bodies[int(kind)%len(bodies)]
		v := mk()
		if err := decodeJSON(bytes.NewReader(b), v); err != nil {
			if !(errors.Is(err, ErrBadRequest) || errors.Is(err, ErrTooLarge)) || err.Error() == "" {
				t.Fatalf("error %v (%T) is not a bad request with a message", err, err)
			}
			return
		}
		enc, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("decoded %T does not encode: %v", v, err)
		}
		w := mk()
		if err := decodeJSON(bytes.NewReader(enc), w); err != nil {
			t.Fatalf("encoded %T %s does not decode: %v", v, enc, err)
		}
		if enc2, _ := json.Marshal(w); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the %T:\n%s\n%s", v, enc, enc2)
		}
	})
}
