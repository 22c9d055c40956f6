// Package inventory owns the model of the data under management (sites,
// groups, partitions, datasets, blocks, files and their replicas), the
// in-memory store that holds everything but files, and the typed updates
// through which it changes.
//
// The store is a deterministic projection of the database: a write is a list
// of typed updates, committed to the database in one transaction together
// with their change-log rows, and only then applied in memory. Readers work
// on snapshots, which cost O(pages) to take and never block the writer.
//
// Imports: internal/db and migrations only. Everything else imports this.
package inventory

import (
	"fmt"
	"strings"
)

// Ids are dense integers assigned by the one writer. In memory they index
// arrays directly; in the database they are the primary keys. Zero is never
// a valid id (GroupID 0 is the null group: "no owner").
type (
	SiteID      int32
	GroupID     int32
	PartitionID int32
	DatasetID   int32
	BlockID     int32
	FileID      int64
)

// NoGroup is the null group: a replica owned by nobody (Dynamo's None).
const NoGroup GroupID = 0

// MaxSites bounds site ids: replicas store the site in 16 bits.
const MaxSites = 1<<16 - 1

// MaxPartitions bounds the number of partitions (including super-partitions):
// each replica carries its membership as a 64-bit mask.
const MaxPartitions = 64

// StorageType is how a site stores data.
type StorageType uint8

const (
	StorageUnknown StorageType = iota
	StorageDisk
	StorageMSS // tape
	StorageBuffer
)

// SiteStatus is the operational state of a site.
type SiteStatus uint8

const (
	SiteUnknown SiteStatus = iota
	SiteReady
	SiteWaitroom
	SiteMorgue
)

// DatasetStatus is the lifecycle state of a dataset.
type DatasetStatus uint8

const (
	DatasetUnknown DatasetStatus = iota
	DatasetDeleted
	DatasetDeprecated
	DatasetInvalid
	DatasetProduction
	DatasetValid
	DatasetIgnored
)

// DataType is the kind of data in a dataset (CMS's values).
type DataType uint8

const (
	DataUnknown DataType = iota
	DataAlign
	DataCalib
	DataCosmic
	DataData
	DataLumi
	DataMC
	DataRaw
	DataTest
	DataProduction
)

// OwnershipLevel says whether a group owns whole datasets or single blocks.
type OwnershipLevel uint8

const (
	OwnDataset OwnershipLevel = iota
	OwnBlock
)

// enum gives every enum type the same text round trip: lower-case names in
// JSON, YAML, the database and the CLI; parsing is case-insensitive.
type enum[T ~uint8] []string

func (e enum[T]) name(v T) string {
	if int(v) < len(e) {
		return e[v]
	}
	return fmt.Sprintf("invalid(%d)", v)
}

func (e enum[T]) parse(kind, s string) (T, error) {
	for i, n := range e {
		if strings.EqualFold(n, s) {
			return T(i), nil
		}
	}
	return 0, fmt.Errorf("%s %q: want one of %s", kind, s, strings.Join(e, ", "))
}

var (
	storageTypes   = enum[StorageType]{"unknown", "disk", "mss", "buffer"}
	siteStatuses   = enum[SiteStatus]{"unknown", "ready", "waitroom", "morgue"}
	datasetStatus  = enum[DatasetStatus]{"unknown", "deleted", "deprecated", "invalid", "production", "valid", "ignored"}
	dataTypes      = enum[DataType]{"unknown", "align", "calib", "cosmic", "data", "lumi", "mc", "raw", "test", "production"}
	ownershipLevel = enum[OwnershipLevel]{"dataset", "block"}
)

func (v StorageType) String() string    { return storageTypes.name(v) }
func (v SiteStatus) String() string     { return siteStatuses.name(v) }
func (v DatasetStatus) String() string  { return datasetStatus.name(v) }
func (v DataType) String() string       { return dataTypes.name(v) }
func (v OwnershipLevel) String() string { return ownershipLevel.name(v) }

// ParseStorageType parses "disk", "mss", "buffer" or "unknown".
func ParseStorageType(s string) (StorageType, error) { return storageTypes.parse("storage type", s) }

// ParseSiteStatus parses "ready", "waitroom", "morgue" or "unknown".
func ParseSiteStatus(s string) (SiteStatus, error) { return siteStatuses.parse("site status", s) }

// ParseDatasetStatus parses a dataset status name.
func ParseDatasetStatus(s string) (DatasetStatus, error) {
	return datasetStatus.parse("dataset status", s)
}

// ParseDataType parses a data type name.
func ParseDataType(s string) (DataType, error) { return dataTypes.parse("data type", s) }

// ParseOwnershipLevel parses "dataset" or "block".
func ParseOwnershipLevel(s string) (OwnershipLevel, error) {
	return ownershipLevel.parse("ownership level", s)
}

func (v StorageType) MarshalText() ([]byte, error)    { return []byte(v.String()), nil }
func (v SiteStatus) MarshalText() ([]byte, error)     { return []byte(v.String()), nil }
func (v DatasetStatus) MarshalText() ([]byte, error)  { return []byte(v.String()), nil }
func (v DataType) MarshalText() ([]byte, error)       { return []byte(v.String()), nil }
func (v OwnershipLevel) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

func (v *StorageType) UnmarshalText(b []byte) (err error) {
	*v, err = ParseStorageType(string(b))
	return err
}
func (v *SiteStatus) UnmarshalText(b []byte) (err error) {
	*v, err = ParseSiteStatus(string(b))
	return err
}
func (v *DatasetStatus) UnmarshalText(b []byte) (err error) {
	*v, err = ParseDatasetStatus(string(b))
	return err
}
func (v *DataType) UnmarshalText(b []byte) (err error) {
	*v, err = ParseDataType(string(b))
	return err
}
func (v *OwnershipLevel) UnmarshalText(b []byte) (err error) {
	*v, err = ParseOwnershipLevel(string(b))
	return err
}
