package inventory

import (
	"slices"
	"strings"
	"sync"
)

// names maps names to ids. It is shared by the writer and every snapshot:
// a name, once given an id, keeps it for ever (a deleted dataset's id is
// reserved for that name), so the maps only grow and a snapshot can use
// them by checking that the id exists in its own state.
type names struct {
	mu         sync.RWMutex
	sites      map[string]SiteID
	groups     map[string]GroupID
	partitions map[string]PartitionID
	datasets   map[string]DatasetID
	sw         []string
	swIndex    map[string]uint16

	// Dataset names in name order, for listings by prefix and pages
	// resuming after a name: unsorted collects (under mu) the names
	// given an id since sorted was last brought up to date, which happens
	// under orderMu on the first read after datasets were created.
	// Published sorted slices are never changed (an update makes a new
	// one), so a reader keeps using the one it got without a lock.
	unsorted []string
	orderMu  sync.Mutex
	sorted   []string
}

func newNames() *names {
	return &names{
		sites:      map[string]SiteID{},
		groups:     map[string]GroupID{"": NoGroup},
		partitions: map[string]PartitionID{},
		datasets:   map[string]DatasetID{},
		sw:         []string{""},
		swIndex:    map[string]uint16{"": 0},
	}
}

func (n *names) addSite(s string, id SiteID) {
	n.mu.Lock()
	n.sites[s] = id
	n.mu.Unlock()
}

func (n *names) addGroup(s string, id GroupID) {
	n.mu.Lock()
	n.groups[s] = id
	n.mu.Unlock()
}

func (n *names) addPartition(s string, id PartitionID) {
	n.mu.Lock()
	n.partitions[s] = id
	n.mu.Unlock()
}

func (n *names) addDataset(s string, id DatasetID) {
	n.mu.Lock()
	n.putDataset(s, id)
	n.mu.Unlock()
}

// putDataset records a dataset name; the caller holds mu or is the only
// user (a load or build not yet published).
func (n *names) putDataset(s string, id DatasetID) {
	if _, ok := n.datasets[s]; !ok {
		n.unsorted = append(n.unsorted, s)
	}
	n.datasets[s] = id
}

// datasetOrder returns every dataset name ever given an id, sorted. The
// first call after a load sorts them all; later calls merge in only the
// names created since, so a listing never pays for a full sort.
func (n *names) datasetOrder() []string {
	n.orderMu.Lock()
	defer n.orderMu.Unlock()
	n.mu.Lock()
	add := n.unsorted
	n.unsorted = nil
	n.mu.Unlock()
	if len(add) == 0 {
		return n.sorted
	}
	slices.Sort(add)
	if len(n.sorted) == 0 {
		n.sorted = slices.Clip(add)
		return n.sorted
	}
	merged := make([]string, 0, len(n.sorted)+len(add))
	old := n.sorted
	for len(old) > 0 && len(add) > 0 {
		if strings.Compare(old[0], add[0]) <= 0 {
			merged, old = append(merged, old[0]), old[1:]
		} else {
			merged, add = append(merged, add[0]), add[1:]
		}
	}
	merged = append(append(merged, old...), add...)
	n.sorted = merged
	return merged
}

// software interns a software version string. Versions beyond 65535
// distinct values share the empty slot: they are informational only.
func (n *names) software(v string) uint16 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if i, ok := n.swIndex[v]; ok {
		return i
	}
	if len(n.sw) >= 1<<16 {
		return 0
	}
	i := uint16(len(n.sw))
	n.sw = append(n.sw, v)
	n.swIndex[v] = i
	return i
}

func (n *names) softwareName(i uint16) string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sw[i]
}

func (n *names) site(s string) (SiteID, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	id, ok := n.sites[s]
	return id, ok
}

func (n *names) group(s string) (GroupID, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	id, ok := n.groups[s]
	return id, ok
}

func (n *names) partition(s string) (PartitionID, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	id, ok := n.partitions[s]
	return id, ok
}

func (n *names) dataset(s string) (DatasetID, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	id, ok := n.datasets[s]
	return id, ok
}
