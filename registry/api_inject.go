package registry

import (
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/internal/apierr"
	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
)

// readInjectDoc decodes an injection body with the API's strict decoder
// (unknown fields, wrong types, trailing data and an empty body are bad
// requests naming what is wrong).
func readInjectDoc(r io.Reader) (*inventory.InjectDoc, error) {
	var doc inventory.InjectDoc
	if err := apierr.Decode(r, &doc, true); err != nil {
		return nil, err
	}
	return &doc, nil
}

// queueInjection stores the document for the inventory writer: 202.
func (s *Server) queueInjection(c *gin.Context) {
	if _, err := s.snapshot(); err != nil {
		s.abort(c, err)
		return
	}
	doc, err := readInjectDoc(c.Request.Body)
	if err != nil {
		s.abort(c, err)
		return
	}
	in, err := s.store.QueueInjection(c.Request.Context(), doc, principalOf(c).Name(), s.now())
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Header("Location", fmt.Sprintf("/api/v1/injections/%d", in.ID))
	c.JSON(http.StatusAccepted, in)
}

// InjectResult is the answer of a synchronous injection.
type InjectResult struct {
	Updates  int    `json:"updates"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

// injectSync applies the document now, in one inventory write.
func (s *Server) injectSync(c *gin.Context) {
	st := s.inv.Load()
	if st == nil {
		s.abort(c, fmt.Errorf("%w: the inventory is still loading", ErrNotReady))
		return
	}
	doc, err := readInjectDoc(c.Request.Body)
	if err != nil {
		s.abort(c, err)
		return
	}
	res, err := st.Inject(c.Request.Context(), s.now(), doc)
	if err != nil {
		// A database error keeps its own mapping (503 when temporary,
		// never its driver text); anything else is the document's fault.
		if !injectTemporary(err) && !db.FromDatabase(err) {
			err = fmt.Errorf("%w: nothing injected: %w", ErrBadRequest, err)
		}
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, InjectResult{Updates: res.Updates, FirstSeq: res.FirstSeq, LastSeq: res.LastSeq})
}

func (s *Server) getInjection(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.abort(c, err)
		return
	}
	in, err := s.store.Injection(c.Request.Context(), id)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, in)
}
