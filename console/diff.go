package console

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/detox"
	"github.com/dynamo-go/dynamo/inventory"
)

// PolicyDiff plans policy diffs on a snapshot (*detox.Runner): the same
// computation as `dynamo detox diff` and POST /api/v1/detox/diff.
type PolicyDiff interface {
	DiffTexts(ctx context.Context, snap *inventory.Snapshot, req detox.DiffRequest) (*detox.DiffReport, error)
}

// PathDiff is the policy diff page; its POST (a candidate policy text)
// only reads, like the REST route.
const PathDiff = "/detox/diff"

// diffPage is what detox_diff.html shows: the form, and the report once
// a partition was chosen.
type diffPage struct {
	Req        detox.DiffRequest
	Partitions []string
	Scopes     []string
	CanPost    bool
	Error      string
	Report     *detox.DiffReport
}

// detoxDiff shows the form and, with a partition, the diff of the
// configured policy under the two chosen copy-count scopes (GET) or
// against a pasted policy text (POST).
func (c *Console) detoxDiff(g *gin.Context) {
	snap := c.src.Inventory.Snapshot()
	p := diffPage{Scopes: []string{"", string(detox.CopyScopePartition), string(detox.CopyScopeInventory)},
		CanPost: c.access.Allowed(g, http.MethodPost, PathDiff)}
	for _, part := range snap.Partitions() {
		p.Partitions = append(p.Partitions, part.Name)
	}
	get := g.Query
	if g.Request.Method == http.MethodPost {
		get = g.PostForm
	}
	p.Req = detox.DiffRequest{Partition: get("partition"), CopyCountsA: get("copy_counts_a"), CopyCountsB: get("copy_counts_b"),
		PolicyA: strings.TrimSpace(get("policy_a")), PolicyB: strings.TrimSpace(get("policy_b"))}
	code := http.StatusOK
	if p.Req.Partition != "" {
		rep, err := c.src.PolicyDiff.DiffTexts(g.Request.Context(), snap, p.Req)
		switch {
		case errors.Is(err, detox.ErrDiffInput):
			code, p.Error = http.StatusBadRequest, err.Error()
		case err != nil:
			c.sourceErr(g, err)
			return
		default:
			p.Report = rep
		}
	}
	c.renderAs(g, code, "detox_diff", "detox", "Policy diff", p)
}
