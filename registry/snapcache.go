package registry

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/inventory"
)

// snapResponses keeps the JSON of responses that depend on nothing but
// the inventory snapshot (the unfiltered site list, usage by site), for
// the newest snapshot they were asked on. They cost a pass over every
// site and partition, which grows with the inventory; a snapshot is
// immutable and the store hands out the same one until the next write,
// so between writes each is built once however many clients ask.
type snapResponses struct {
	mu   sync.Mutex
	snap *inventory.Snapshot
	body map[string][]byte
}

// get returns the JSON of response key on snap, building it with build
// if this snapshot has not had it yet.
func (r *snapResponses) get(snap *inventory.Snapshot, key string, build func() any) ([]byte, error) {
	r.mu.Lock()
	b, ok := r.body[key]
	ok = ok && r.snap == snap
	r.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := json.Marshal(build())
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.snap == snap:
		r.body[key] = b
	case r.snap == nil || snap.Seq() >= r.snap.Seq(): // never evict a newer snapshot's
		r.snap, r.body = snap, map[string][]byte{key: b}
	}
	return b, nil
}

// jsonFromSnapshot writes the cached response key of snap (see get).
func (s *Server) jsonFromSnapshot(c *gin.Context, snap *inventory.Snapshot, key string, build func() any) {
	b, err := s.snapResp.get(snap, key, build)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
}
