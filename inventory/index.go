package inventory

import "sync"

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
	n.datasets[s] = id
	n.mu.Unlock()
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
