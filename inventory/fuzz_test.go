package inventory

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeInjectDoc: an injection document, however broken, gives a
// document or an error naming the injection document, never a panic; a
// document that decodes encodes to a canonical form that decodes to
// itself, and the name checks run on it without a panic.
func FuzzDecodeInjectDoc(f *testing.F) {
	f.Add([]byte(`{"sites":[{"name":"T2_A","storage_type":"disk","status":"ready","quotas":{"Default":100}}],
"groups":[{"name":"AnalysisOps","olevel":"dataset"}],
"datasets":[{"name":"/A/B/RAW","status":"valid","data_type":"mc","is_open":false,
  "blocks":[{"name":"b1","is_open":false,"files":[{"lfn":"/store/a/1.root","size":10}]}]}],
"dataset_replicas":[{"dataset":"/A/B/RAW","site":"T2_A","group":"AnalysisOps","blocks":["b1"]}],
"block_replicas":[{"block":"/A/B/RAW#b1","site":"T2_A","files":["/store/a/1.root"]}]}`))
	f.Add([]byte(`{"sites":[{"name":"T2_A","storage_type":"tape","status":"gone"}]}`))
	f.Add([]byte(`{"datasets":[{"name":"/A/B/RAW","blocks":[{"name":"b1","size":-1,"num_files":2}]}]} {}`))
	f.Add([]byte(`{"sitez":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := DecodeInjectDoc(bytes.NewReader(b))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "injection document: ") {
				t.Fatalf("error %q does not say what was being read", err)
			}
			return
		}
		_ = checkInjectNames(doc)
		canon, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("a decoded document does not encode: %v", err)
		}
		again, err := DecodeInjectDoc(bytes.NewReader(canon))
		if err != nil {
			t.Fatalf("the encoded document %s does not decode: %v", canon, err)
		}
		if canon2, _ := json.Marshal(again); !bytes.Equal(canon, canon2) {
			t.Fatalf("round trip changed the document:\n%s\n%s", canon, canon2)
		}
	})
}

// FuzzChangeLogReplay: a change-log row (kind, body), as a standby reads
// it when it catches up, decodes to the update of that kind or is refused
// with an error naming the change log, never a panic; a decoded update
// encodes to a body that decodes to the same update, which is how the
// writer stored it.
func FuzzChangeLogReplay(f *testing.F) {
	for kind, body := range map[string]string{
		"upsert_site":            `{"id":1,"name":"T2_A","storage_type":"disk","status":"ready"}`,
		"upsert_group":           `{"id":1,"name":"AnalysisOps","olevel":"dataset"}`,
		"set_quota":              `{"site_id":1,"partition_id":1,"bytes":100}`,
		"upsert_dataset":         `{"id":3,"name":"/A/B/RAW","status":"valid"}`,
		"delete_dataset":         `{"id":3}`,
		"upsert_files":           `{"block_id":2,"files":[{"id":9,"lfn":"/store/a.root","size":5}]}`,
		"upsert_block_replica":   `{"block_id":2,"site_id":1,"group_id":1,"complete":true}`,
		"delete_block_replica":   `{"block_id":2,"site_id":1}`,
		"set_replica_files":      `{"block_id":2,"site_id":1,"add":[9],"remove":[]}`,
		"delete_dataset_replica": `{"dataset_id":"x"}`,
		"no_such_kind":           `{}`,
	} {
		f.Add(kind, []byte(body))
	}
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		u, err := DecodeUpdate(kind, body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "change log: ") {
				t.Fatalf("error %q does not name the change log", err)
			}
			return
		}
		if u.Kind() != kind {
			t.Fatalf("kind %q decoded as %q", kind, u.Kind())
		}
		stored, err := json.Marshal(u)
		if err != nil {
			t.Fatalf("a decoded update does not encode: %v", err)
		}
		again, err := DecodeUpdate(kind, stored)
		if err != nil {
			t.Fatalf("the stored body %s does not decode: %v", stored, err)
		}
		if !reflect.DeepEqual(normalise(u), normalise(again)) {
			t.Fatalf("replay changed the update:\n%#v\n%#v", u, again)
		}
	})
}

// normalise maps an update to its JSON form, where an empty list and no
// list are the same thing (omitempty).
func normalise(u Update) string {
	b, _ := json.Marshal(u)
	return string(b)
}
