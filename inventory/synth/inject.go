package synth

import (
	"fmt"
	"math/rand/v2"

	"github.com/dynamo-go/dynamo/inventory"
)

// InjectSpec says what injection document to generate: a campaign of new
// datasets, each with a few blocks of files and replicas at some sites.
type InjectSpec struct {
	Sites    int // sites defined by the document
	Datasets int
	Seed     uint64
	// Prefix makes dataset names distinct between documents injected into
	// the same inventory.
	Prefix string
}

// InjectDoc builds a deterministic injection document. Per dataset it holds
// one dataset, 3 blocks with 2 files each, two dataset replicas (every
// block complete) and one incomplete block replica at a third site: about
// 15 updates per dataset, in the proportions an operator's campaign
// document has (most updates are blocks, files and replicas).
func InjectDoc(spec InjectSpec) *inventory.InjectDoc {
	rng := rand.New(rand.NewPCG(spec.Seed, 0x1e7))
	doc := &inventory.InjectDoc{}
	for i := 1; i <= spec.Sites; i++ {
		doc.Sites = append(doc.Sites, inventory.InjectSite{Name: fmt.Sprintf("T2_IN_Site%03d", i),
			Host: fmt.Sprintf("se%03d.example.org", i), StorageType: inventory.StorageDisk, Status: inventory.SiteReady})
	}
	doc.Groups = []inventory.InjectGroup{{Name: "AnalysisOps", Level: inventory.OwnDataset}}
	site := func() string { return doc.Sites[rng.IntN(len(doc.Sites))].Name }
	for d := 0; d < spec.Datasets; d++ {
		name := fmt.Sprintf("/Campaign%s%07d/Run2025X-v1/AOD", spec.Prefix, d)
		ds := inventory.InjectDataset{Name: name, Status: inventory.DatasetValid, DataType: inventory.DataData}
		for b := 0; b < 3; b++ {
			blk := inventory.InjectBlock{Name: uuid(rng)}
			for f := 0; f < 2; f++ {
				blk.Files = append(blk.Files, inventory.InjectFile{
					LFN:  fmt.Sprintf("/store/data/Campaign%s%07d/AOD/%d/%d.root", spec.Prefix, d, b, f),
					Size: 1_000_000 + rng.Int64N(3_000_000_000), Adler32: fmt.Sprintf("%08x", rng.Uint32())})
			}
			ds.Blocks = append(ds.Blocks, blk)
		}
		doc.Datasets = append(doc.Datasets, ds)
		if len(doc.Sites) == 0 {
			continue
		}
		s1, s2 := site(), site()
		for s2 == s1 && len(doc.Sites) > 1 {
			s2 = site()
		}
		doc.DatasetReplicas = append(doc.DatasetReplicas,
			inventory.InjectDatasetReplica{Dataset: name, Site: s1, Group: "AnalysisOps"},
			inventory.InjectDatasetReplica{Dataset: name, Site: s2, Group: "AnalysisOps"})
		s3 := site()
		if s3 != s1 && s3 != s2 {
			b := ds.Blocks[0]
			doc.BlockReplicas = append(doc.BlockReplicas, inventory.InjectBlockReplica{
				Block: name + "#" + b.Name, Site: s3, Group: "AnalysisOps", Files: []string{b.Files[0].LFN}})
		}
	}
	return doc
}
