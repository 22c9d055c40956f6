package inventory

// The exported value types. They are what readers get back from a snapshot
// (copies: changing one changes nothing in the store) and what typed updates
// carry. JSON field names are the API's and the change log's.

// Site is a storage site.
type Site struct {
	ID          SiteID      `json:"id"`
	Name        string      `json:"name"`
	Host        string      `json:"host,omitempty"`
	StorageType StorageType `json:"storage_type"`
	Backend     string      `json:"backend,omitempty"` // URL prefix of the site's storage, e.g. davs://host:443/store
	Status      SiteStatus  `json:"status"`
}

// Group owns replicas and is charged for them in owner-based partitions.
type Group struct {
	ID    GroupID        `json:"id"`
	Name  string         `json:"name"`
	Level OwnershipLevel `json:"olevel"`
}

// Partition is a named slice of each site's storage, defined by a
// condition on block replicas or as the union of sub-partitions.
type Partition struct {
	ID   PartitionID `json:"id"`
	Name string      `json:"name"`
	Subs []string    `json:"subpartitions,omitempty"`
}

// Dataset is a named collection of blocks.
type Dataset struct {
	ID              DatasetID     `json:"id"`
	Name            string        `json:"name"`
	Status          DatasetStatus `json:"status"`
	DataType        DataType      `json:"data_type"`
	SoftwareVersion string        `json:"software_version,omitempty"`
	LastUpdate      int64         `json:"last_update"` // unix seconds
	Open            bool          `json:"is_open"`

	// Derived, maintained by the store; ignored in updates.
	Size      int64 `json:"size"`
	NumBlocks int32 `json:"num_blocks"`
	NumFiles  int32 `json:"num_files"`
}

// Block is the unit of replication: a set of files of one dataset.
type Block struct {
	ID         BlockID   `json:"id"`
	Dataset    DatasetID `json:"dataset_id"`
	Name       string    `json:"name"` // the part after '#'
	Size       int64     `json:"size"`
	NumFiles   int32     `json:"num_files"`
	Open       bool      `json:"is_open"`
	LastUpdate int64     `json:"last_update"`
}

// File is a file of a block. Files live only in the database.
type File struct {
	ID      FileID  `json:"id"`
	Block   BlockID `json:"block_id"`
	LFN     string  `json:"lfn"`
	Size    int64   `json:"size"`
	Adler32 string  `json:"adler32,omitempty"`
}

// DatasetReplica says a dataset is (partly) at a site.
type DatasetReplica struct {
	Dataset DatasetID `json:"dataset_id"`
	Site    SiteID    `json:"site_id"`
	Growing bool      `json:"growing"` // new blocks of the dataset get replicas here
	Group   GroupID   `json:"group_id"`
}

// BlockReplica is a block at a site. An incomplete replica is being
// transferred: Size and NumFiles say what is there so far.
type BlockReplica struct {
	Block           BlockID `json:"block_id"`
	Site            SiteID  `json:"site_id"`
	Group           GroupID `json:"group_id"`
	Custodial       bool    `json:"is_custodial"`
	PendingDeletion bool    `json:"pending_deletion"` // left the owner's quota; files being removed
	// Suspicious: checksum mismatches traced to this replica as a transfer
	// source, or an operator declared it bad. It is not counted as a copy
	// (CountsAsCopy) and not used as a source until an operator clears it.
	Suspicious bool  `json:"suspicious,omitempty"`
	Complete   bool  `json:"is_complete"`
	Size       int64 `json:"size"`      // for a complete replica, the block's size
	NumFiles   int32 `json:"num_files"` // for a complete replica, the block's count
	LastUpdate int64 `json:"last_update"`
}

// Usage is the occupancy of one site partition.
type Usage struct {
	Site      SiteID      `json:"site_id"`
	Partition PartitionID `json:"partition_id"`
	Quota     int64       `json:"quota"`     // bytes; 0 = no quota
	Physical  int64       `json:"physical"`  // bytes present
	Projected int64       `json:"projected"` // bytes once incomplete replicas complete
}

// Fraction returns physical and projected occupancy as fractions of the
// quota; with no quota both are +Inf when anything is stored (Dynamo's rule)
// and 0 otherwise.
func (u Usage) Fraction() (physical, projected float64) {
	if u.Quota <= 0 {
		inf := func(v int64) float64 {
			if v > 0 {
				return posInf
			}
			return 0
		}
		return inf(u.Physical), inf(u.Projected)
	}
	return float64(u.Physical) / float64(u.Quota), float64(u.Projected) / float64(u.Quota)
}
