package detox

import (
	"context"
	"fmt"
)

// CyclePartitions lists the partitions that have recorded cycles, by name.
func (h *History) CyclePartitions(ctx context.Context) ([]string, error) {
	out := []string{}
	if err := h.d.SelectContext(ctx, &out, "SELECT DISTINCT partition_name FROM detox_cycles ORDER BY partition_name"); err != nil {
		return nil, fmt.Errorf("list detox partitions: %w", err)
	}
	return out, nil
}

// DecisionBytes is what one decision covers at one site in one cycle.
type DecisionBytes struct {
	Site     string `db:"site_name" json:"site"`
	Decision string `db:"decision" json:"decision"`
	Bytes    int64  `db:"bytes" json:"bytes"`
	Replicas int64  `db:"n" json:"replicas"`
}

// DecisionTotals sums a cycle's recorded decisions per site and decision
// (keep, protect, delete, ignore), sorted by site and decision.
func (h *History) DecisionTotals(ctx context.Context, id int64) ([]DecisionBytes, error) {
	out := []DecisionBytes{}
	if err := h.d.SelectContext(ctx, &out, `SELECT site_name, decision, COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS n
		FROM detox_cycle_replicas WHERE cycle_id = ? GROUP BY site_name, decision ORDER BY site_name, decision`, id); err != nil {
		return nil, fmt.Errorf("sum detox cycle %d decisions: %w", id, err)
	}
	return out, nil
}

// Neighbours returns the ids of the finished cycles of the same partition
// just before and just after id (0 when there is none).
func (h *History) Neighbours(ctx context.Context, partition string, id int64) (prev, next int64, err error) {
	var p, n []int64
	if err := h.d.SelectContext(ctx, &p, `SELECT id FROM detox_cycles WHERE partition_name = ? AND id < ? AND finished > 0
		ORDER BY id DESC LIMIT 1`, partition, id); err != nil {
		return 0, 0, fmt.Errorf("previous detox cycle of %d: %w", id, err)
	}
	if err := h.d.SelectContext(ctx, &n, `SELECT id FROM detox_cycles WHERE partition_name = ? AND id > ? AND finished > 0
		ORDER BY id LIMIT 1`, partition, id); err != nil {
		return 0, 0, fmt.Errorf("next detox cycle of %d: %w", id, err)
	}
	if len(p) > 0 {
		prev = p[0]
	}
	if len(n) > 0 {
		next = n[0]
	}
	return prev, next, nil
}
