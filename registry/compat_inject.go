package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dynamo-go/dynamo/inventory"
)

// Dynamo's injection document (docs adding_content.rst): singular keys,
// datasets holding blocks holding files {name, size}, and dataset replicas
// holding block replicas.
type dynamoInject struct {
	Dataset []struct {
		Name            string `json:"name"`
		Status          string `json:"status,omitempty"`
		DataType        string `json:"data_type,omitempty"`
		SoftwareVersion string `json:"software_version,omitempty"`
		IsOpen          bool   `json:"is_open,omitempty"`
		Blocks          []struct {
			Name   string `json:"name"`
			IsOpen bool   `json:"is_open,omitempty"`
			Files  []struct {
				Name    string `json:"name"`
				Size    int64  `json:"size"`
				Adler32 string `json:"adler32,omitempty"`
			} `json:"files"`
		} `json:"blocks,omitempty"`
	} `json:"dataset,omitempty"`
	Site []struct {
		Name        string `json:"name"`
		Host        string `json:"host,omitempty"`
		StorageType string `json:"storage_type,omitempty"`
		Backend     string `json:"backend,omitempty"`
		Status      string `json:"status,omitempty"`
	} `json:"site,omitempty"`
	Group []struct {
		Name   string `json:"name"`
		OLevel string `json:"olevel,omitempty"`
	} `json:"group,omitempty"`
	DatasetReplica []struct {
		Dataset       string `json:"dataset"`
		Site          string `json:"site"`
		Group         string `json:"group,omitempty"`
		Growing       bool   `json:"growing,omitempty"`
		BlockReplicas []struct {
			Block      string `json:"block"`
			Group      string `json:"group,omitempty"`
			LastUpdate any    `json:"last_update,omitempty"`
		} `json:"blockreplicas,omitempty"`
	} `json:"datasetreplica,omitempty"`
}

func lowerOr(s, def string) string {
	if s == "" {
		return def
	}
	return strings.ToLower(s)
}

// decodeDynamoInject accepts either our injection document (plural keys,
// docs/inventory.md) or Dynamo's (singular keys), strictly, and returns
// ours. Dynamo's enum values are upper-case in places; they are lowered.
func decodeDynamoInject(b []byte) (*inventory.InjectDoc, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrBadRequest, err)
	}
	dynamo := false
	for k := range keys {
		if k == "dataset" || k == "site" || k == "group" || k == "datasetreplica" {
			dynamo = true
		}
	}
	if !dynamo {
		return readInjectDoc(bytes.NewReader(b))
	}
	var in dynamoInject
	if err := decodeJSON(bytes.NewReader(b), &in); err != nil {
		return nil, err
	}
	var doc inventory.InjectDoc
	conv := func(field string, err error) error {
		if err != nil {
			return fieldErr(field, "%v", err)
		}
		return nil
	}
	for i, s := range in.Site {
		is := inventory.InjectSite{Name: s.Name, Host: s.Host, Backend: s.Backend}
		if err := conv(fmt.Sprintf("site[%d].storage_type", i), is.StorageType.UnmarshalText([]byte(lowerOr(s.StorageType, "disk")))); err != nil {
			return nil, err
		}
		if err := conv(fmt.Sprintf("site[%d].status", i), is.Status.UnmarshalText([]byte(lowerOr(s.Status, "ready")))); err != nil {
			return nil, err
		}
		doc.Sites = append(doc.Sites, is)
	}
	for i, g := range in.Group {
		ig := inventory.InjectGroup{Name: g.Name}
		if err := conv(fmt.Sprintf("group[%d].olevel", i), ig.Level.UnmarshalText([]byte(lowerOr(g.OLevel, "dataset")))); err != nil {
			return nil, err
		}
		doc.Groups = append(doc.Groups, ig)
	}
	for i, d := range in.Dataset {
		id := inventory.InjectDataset{Name: d.Name, SoftwareVersion: d.SoftwareVersion, Open: d.IsOpen}
		if err := conv(fmt.Sprintf("dataset[%d].status", i), id.Status.UnmarshalText([]byte(lowerOr(d.Status, "valid")))); err != nil {
			return nil, err
		}
		if err := conv(fmt.Sprintf("dataset[%d].data_type", i), id.DataType.UnmarshalText([]byte(lowerOr(d.DataType, "unknown")))); err != nil {
			return nil, err
		}
		for _, bl := range d.Blocks {
			ib := inventory.InjectBlock{Name: bl.Name, Open: bl.IsOpen}
			for _, f := range bl.Files {
				ib.Files = append(ib.Files, inventory.InjectFile{LFN: f.Name, Size: f.Size, Adler32: f.Adler32})
			}
			if ib.Files == nil {
				zero, none := int64(0), int32(0)
				ib.Size, ib.NumFiles = &zero, &none
			}
			id.Blocks = append(id.Blocks, ib)
		}
		doc.Datasets = append(doc.Datasets, id)
	}
	for _, r := range in.DatasetReplica {
		ir := inventory.InjectDatasetReplica{Dataset: r.Dataset, Site: r.Site, Group: r.Group, Growing: r.Growing}
		for _, br := range r.BlockReplicas {
			ir.Blocks = append(ir.Blocks, br.Block)
		}
		doc.DatasetReplicas = append(doc.DatasetReplicas, ir)
	}
	return &doc, nil
}
