package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// InjectDoc is the injection format: sites, groups, datasets with their
// blocks and files, and replicas, all by name. Everything in one document
// is applied in one transaction or not at all. See docs/inventory.md.
type InjectDoc struct {
	Sites           []InjectSite           `json:"sites,omitempty"`
	Groups          []InjectGroup          `json:"groups,omitempty"`
	Datasets        []InjectDataset        `json:"datasets,omitempty"`
	DatasetReplicas []InjectDatasetReplica `json:"dataset_replicas,omitempty"`
	BlockReplicas   []InjectBlockReplica   `json:"block_replicas,omitempty"`
}

// InjectSite adds or updates a site and its quotas (bytes per partition).
type InjectSite struct {
	Name        string           `json:"name"`
	Host        string           `json:"host,omitempty"`
	StorageType StorageType      `json:"storage_type"`
	Backend     string           `json:"backend,omitempty"`
	Status      SiteStatus       `json:"status"`
	Quotas      map[string]int64 `json:"quotas,omitempty"`
	// AllowProtectionChange confirms a change of storage type, or of
	// status away from ready/waitroom, on a site holding last copies
	// (see checkSiteProtection); without it such a change is an error.
	AllowProtectionChange bool `json:"allow_protection_change,omitempty"`
}

// InjectGroup adds or updates a group.
type InjectGroup struct {
	Name  string         `json:"name"`
	Level OwnershipLevel `json:"olevel"`
}

// InjectDataset adds or updates a dataset and the listed blocks.
type InjectDataset struct {
	Name            string        `json:"name"`
	Status          DatasetStatus `json:"status"`
	DataType        DataType      `json:"data_type"`
	SoftwareVersion string        `json:"software_version,omitempty"`
	LastUpdate      int64         `json:"last_update,omitempty"`
	Open            bool          `json:"is_open"`
	Blocks          []InjectBlock `json:"blocks,omitempty"`
}

// InjectBlock adds or updates a block. With files, its size and file count
// are computed from them (and must match size/num_files when those are
// given too); without files, size and num_files are taken as given.
type InjectBlock struct {
	Name       string       `json:"name"`
	Open       bool         `json:"is_open"`
	LastUpdate int64        `json:"last_update,omitempty"`
	Size       *int64       `json:"size,omitempty"`
	NumFiles   *int32       `json:"num_files,omitempty"`
	Files      []InjectFile `json:"files,omitempty"`
}

// InjectFile adds or updates a file of the enclosing block.
type InjectFile struct {
	LFN     string `json:"lfn"`
	Size    int64  `json:"size"`
	Adler32 string `json:"adler32,omitempty"`
}

// InjectDatasetReplica places a dataset at a site. Blocks lists the blocks
// present (complete); omitted, every block of the dataset is.
type InjectDatasetReplica struct {
	Dataset   string   `json:"dataset"`
	Site      string   `json:"site"`
	Group     string   `json:"group,omitempty"`
	Growing   bool     `json:"growing"`
	Custodial bool     `json:"custodial,omitempty"`
	Blocks    []string `json:"blocks,omitempty"`
}

// InjectBlockReplica places one block at a site. With Files, the replica
// is incomplete and holds only those files (given by LFN).
type InjectBlockReplica struct {
	Block     string   `json:"block"` // dataset#block
	Site      string   `json:"site"`
	Group     string   `json:"group,omitempty"`
	Custodial bool     `json:"custodial,omitempty"`
	Files     []string `json:"files,omitempty"`
}

// DecodeInjectDoc decodes an injection document strictly: unknown fields
// and trailing data are errors.
func DecodeInjectDoc(r io.Reader) (*InjectDoc, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var doc InjectDoc
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("injection document: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("injection document: trailing data after the JSON object")
	}
	return &doc, nil
}

// Inject applies an injection document in one write. Invalid input rejects
// the whole document with an error naming the object; nothing is written.
func (s *Store) Inject(ctx context.Context, at time.Time, doc *InjectDoc) (WriteResult, error) {
	return s.InjectWithProgress(ctx, at, doc, nil)
}

// InjectWithProgress is Inject that reports how far it has got: datasets
// validated while the write is built, then updates persisted (see
// Progress). progress may be nil; it runs on the writer's goroutine and
// must be quick.
func (s *Store) InjectWithProgress(ctx context.Context, at time.Time, doc *InjectDoc, progress func(Progress)) (WriteResult, error) {
	if err := checkInjectNames(doc); err != nil {
		return WriteResult{}, err
	}
	return s.Write(ctx, at, func(t *Txn) error {
		t.OnProgress(progress)
		return s.buildInjection(ctx, t, doc)
	})
}

func (s *Store) buildInjection(ctx context.Context, t *Txn, doc *InjectDoc) error {
	ts := t.At().Unix()
	for i, in := range doc.Sites {
		where := fmt.Sprintf("sites[%d] (%s)", i, in.Name)
		id, ok := t.SiteID(in.Name)
		if !ok {
			id = t.NewSiteID()
		} else if err := t.checkSiteProtection(id, in); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if err := t.Add(UpsertSite{Site{ID: id, Name: in.Name, Host: in.Host, StorageType: in.StorageType, Backend: in.Backend, Status: in.Status}}); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		for pname, bytes := range in.Quotas {
			pid, ok := t.PartitionID(pname)
			if !ok {
				return fmt.Errorf("%s: quota for unknown partition %q", where, pname)
			}
			if err := t.Add(SetQuota{Site: id, Partition: pid, Bytes: bytes}); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
	}
	for i, in := range doc.Groups {
		id, ok := t.GroupID(in.Name)
		if !ok {
			id = t.NewGroupID()
		}
		if err := t.Add(UpsertGroup{Group{ID: id, Name: in.Name, Level: in.Level}}); err != nil {
			return fmt.Errorf("groups[%d] (%s): %w", i, in.Name, err)
		}
	}
	// fileBlock remembers which files this document defines, for replicas.
	type fileInfo struct {
		id   FileID
		size int64
	}
	docFiles := map[BlockID]map[string]fileInfo{}
	stored, err := s.storedFiles(ctx, doc)
	if err != nil {
		return err
	}
	for i, in := range doc.Datasets {
		if t.progress != nil && i%progressEvery == 0 && i > 0 {
			t.progress(Progress{Phase: "build", Done: i, Total: len(doc.Datasets)})
		}
		where := fmt.Sprintf("datasets[%d] (%s)", i, in.Name)
		id, exists := t.DatasetID(in.Name)
		if id == 0 {
			id = t.NewDatasetID()
		}
		_ = exists
		last := in.LastUpdate
		if last == 0 {
			last = ts
		}
		if err := t.Add(UpsertDataset{Dataset{ID: id, Name: in.Name, Status: in.Status, DataType: in.DataType,
			SoftwareVersion: in.SoftwareVersion, LastUpdate: last, Open: in.Open}}); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		for j, bin := range in.Blocks {
			bwhere := fmt.Sprintf("%s.blocks[%d] (%s#%s)", where, j, in.Name, bin.Name)
			bid, ok := t.BlockID(id, bin.Name)
			if !ok {
				bid = t.NewBlockID()
			}
			blk := Block{ID: bid, Dataset: id, Name: bin.Name, Open: bin.Open, LastUpdate: bin.LastUpdate}
			if blk.LastUpdate == 0 {
				blk.LastUpdate = ts
			}
			if len(bin.Files) > 0 {
				for _, f := range bin.Files {
					blk.Size += f.Size
				}
				blk.NumFiles = int32(len(bin.Files))
				if bin.Size != nil && *bin.Size != blk.Size {
					return fmt.Errorf("%s: size %d does not match the sum of its files' sizes %d", bwhere, *bin.Size, blk.Size)
				}
				if bin.NumFiles != nil && *bin.NumFiles != blk.NumFiles {
					return fmt.Errorf("%s: num_files %d does not match its %d files", bwhere, *bin.NumFiles, blk.NumFiles)
				}
			} else {
				if bin.Size == nil || bin.NumFiles == nil {
					return fmt.Errorf("%s: give either files or both size and num_files", bwhere)
				}
				blk.Size, blk.NumFiles = *bin.Size, *bin.NumFiles
			}
			if err := t.Add(UpsertBlock{blk}); err != nil {
				return fmt.Errorf("%s: %w", bwhere, err)
			}
			if len(bin.Files) == 0 {
				continue
			}
			ids, err := fileIDs(t, stored, bid, bin.Files)
			if err != nil {
				return fmt.Errorf("%s: %w", bwhere, err)
			}
			files := make([]File, len(bin.Files))
			m := make(map[string]fileInfo, len(bin.Files))
			for k, f := range bin.Files {
				files[k] = File{ID: ids[k], Block: bid, LFN: f.LFN, Size: f.Size, Adler32: strings.ToLower(f.Adler32)}
				m[f.LFN] = fileInfo{ids[k], f.Size}
			}
			docFiles[bid] = m
			// Chunk very large blocks so no change-log row grows huge.
			for len(files) > 0 {
				n := min(len(files), 5000)
				if err := t.Add(UpsertFiles{Block: bid, Files: files[:n]}); err != nil {
					return fmt.Errorf("%s: %w", bwhere, err)
				}
				files = files[n:]
			}
		}
	}
	addReplica := func(where string, bid BlockID, site SiteID, group GroupID, custodial bool, present []string) error {
		blk, _ := t.Block(bid)
		r := BlockReplica{Block: bid, Site: site, Group: group, Custodial: custodial, LastUpdate: ts,
			Complete: true, Size: blk.Size, NumFiles: blk.NumFiles}
		if cur, ok := t.BlockReplica(bid, site); ok {
			r.Suspicious = cur.Suspicious // only an operator clears it (fileop.MarkReplica)
		}
		var add []FileID
		if len(present) > 0 {
			known := docFiles[bid]
			if known == nil {
				return fmt.Errorf("%s: files of an incomplete replica must be injected with their block in the same document", where)
			}
			r.Size, r.NumFiles = 0, 0
			seen := map[string]bool{}
			for _, lfn := range present {
				f, ok := known[lfn]
				if !ok {
					return fmt.Errorf("%s: file %s is not a file of the block", where, lfn)
				}
				if seen[lfn] {
					continue
				}
				seen[lfn] = true
				r.Size += f.size
				r.NumFiles++
				add = append(add, f.id)
			}
			r.Complete = r.NumFiles == blk.NumFiles
		}
		if err := t.Add(UpsertBlockReplica{r}); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if !r.Complete && len(add) > 0 {
			if err := t.Add(SetReplicaFiles{Block: bid, Site: site, Add: add}); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
		return nil
	}
	resolve := func(where, siteName, groupName string) (SiteID, GroupID, error) {
		site, ok := t.SiteID(siteName)
		if !ok {
			return 0, 0, fmt.Errorf("%s: unknown site %q", where, siteName)
		}
		group, ok := t.GroupID(groupName)
		if !ok {
			return 0, 0, fmt.Errorf("%s: unknown group %q", where, groupName)
		}
		return site, group, nil
	}
	for i, in := range doc.DatasetReplicas {
		where := fmt.Sprintf("dataset_replicas[%d] (%s at %s)", i, in.Dataset, in.Site)
		ds, ok := t.DatasetID(in.Dataset)
		if !ok {
			return fmt.Errorf("%s: unknown dataset %q", where, in.Dataset)
		}
		site, group, err := resolve(where, in.Site, in.Group)
		if err != nil {
			return err
		}
		if err := t.Add(UpsertDatasetReplica{DatasetReplica{Dataset: ds, Site: site, Growing: in.Growing, Group: group}}); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		blocks := in.Blocks
		if blocks == nil {
			blocks = t.blockNamesOf(ds, doc)
		}
		for _, bname := range blocks {
			bid, ok := t.BlockID(ds, bname)
			if !ok {
				return fmt.Errorf("%s: unknown block %s#%s", where, in.Dataset, bname)
			}
			if err := addReplica(where, bid, site, group, in.Custodial, nil); err != nil {
				return err
			}
		}
	}
	for i, in := range doc.BlockReplicas {
		where := fmt.Sprintf("block_replicas[%d] (%s at %s)", i, in.Block, in.Site)
		dsName, bname, err := SplitBlockName(in.Block)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		ds, ok := t.DatasetID(dsName)
		if !ok {
			return fmt.Errorf("%s: unknown dataset %q", where, dsName)
		}
		bid, ok := t.BlockID(ds, bname)
		if !ok {
			return fmt.Errorf("%s: unknown block", where)
		}
		site, group, err := resolve(where, in.Site, in.Group)
		if err != nil {
			return err
		}
		if !t.dsReplicaExists(ds, site) {
			if err := t.Add(UpsertDatasetReplica{DatasetReplica{Dataset: ds, Site: site, Group: group}}); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
		if err := addReplica(where, bid, site, group, in.Custodial, in.Files); err != nil {
			return err
		}
	}
	return nil
}

// blockNamesOf lists the blocks of a dataset: those in the inventory plus
// those this document adds.
func (t *Txn) blockNamesOf(ds DatasetID, doc *InjectDoc) []string {
	seen := map[string]bool{}
	var out []string
	if int32(ds) < t.st.datasets.len() {
		for i := t.st.datasets.at(int32(ds)).blockHead; i != 0; i = t.st.blocks.at(i).next {
			b := t.st.blocks.at(i)
			n := t.st.blockNames.get(b.nameOff, b.nameLen)
			if !t.deletedBlocks[BlockID(i)] && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	for _, name := range t.newBlocks[ds] {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// storedFile is a file the database already holds.
type storedFile struct {
	id    FileID
	block BlockID
}

// storedFiles looks up, in a few queries for the whole document, which of
// its files the database already holds (files live only there).
func (s *Store) storedFiles(ctx context.Context, doc *InjectDoc) (map[string]storedFile, error) {
	out := map[string]storedFile{}
	const chunk = 1000
	var lfns []any
	query := func() error {
		if len(lfns) == 0 {
			return nil
		}
		q := "SELECT id, block_id, lfn FROM files WHERE lfn IN (" + strings.TrimSuffix(strings.Repeat("?,", len(lfns)), ",") + ")"
		rows, err := s.db.QueryContext(ctx, q, lfns...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var f storedFile
			var lfn string
			if err := rows.Scan(&f.id, &f.block, &lfn); err != nil {
				return err
			}
			out[lfn] = f
		}
		lfns = lfns[:0]
		return rows.Err()
	}
	for _, ds := range doc.Datasets {
		for _, b := range ds.Blocks {
			for _, f := range b.Files {
				lfns = append(lfns, f.LFN)
				if len(lfns) == chunk {
					if err := query(); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if err := query(); err != nil {
		return nil, err
	}
	return out, nil
}

// fileIDs returns an id for each file: the existing id of an LFN already in
// this block, a new one otherwise. An LFN that belongs to another block is
// an error (LFNs are unique).
func fileIDs(t *Txn, stored map[string]storedFile, block BlockID, files []InjectFile) ([]FileID, error) {
	out := make([]FileID, len(files))
	for i, f := range files {
		old, ok := stored[f.LFN]
		switch {
		case !ok:
			out[i] = t.NewFileID()
		case old.block != block:
			return nil, fmt.Errorf("file %s already belongs to another block (id %d)", f.LFN, old.block)
		default:
			out[i] = old.id
		}
	}
	return out, nil
}
