// Package synth writes a realistic synthetic inventory straight into the
// database, for benchmarks at CMS scale (100 sites, 300,000 datasets,
// 3,000,000 blocks, 10,000,000 block replicas) and for demos. It bypasses
// the typed-update path on purpose: going through the change log would
// make the generator, not the system under test, the slow part. The result
// is a valid inventory that inventory.Load accepts.
//
// Everything is deterministic for a given Spec (including Seed).
package synth

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/dynamo-go/dynamo/internal/db"
)

// Spec says what to generate.
type Spec struct {
	Sites             int     // number of sites; about a tenth are tape (mss)
	Datasets          int     // number of datasets
	BlocksPerDataset  float64 // mean blocks per dataset (log-normal)
	ReplicasPerBlock  float64 // mean block replicas per block, 1..5
	IncompleteFrac    float64 // fraction of block replicas still being transferred
	Seed              uint64
	TargetOccupancy   float64 // quotas are set so disk sites sit around this fraction
	ReportEveryBlocks int     // progress callback period, in blocks
}

// CMS is the CMS-scale spec of the foundation benchmark.
func CMS() Spec {
	return Spec{Sites: 100, Datasets: 300_000, BlocksPerDataset: 10, ReplicasPerBlock: 3.45,
		IncompleteFrac: 0.01, Seed: 1, TargetOccupancy: 0.9, ReportEveryBlocks: 250_000}
}

// Stats counts what was generated.
type Stats struct {
	Sites, Groups, Datasets, Blocks, DatasetReplicas, BlockReplicas int64
	Bytes                                                           int64
}

var (
	groups = []string{"AnalysisOps", "DataOps", "RelVal", "local", "caf-comm", "express", "IB RelVal"}
	tiers  = []string{"AOD", "AODSIM", "MINIAOD", "MINIAODSIM", "NANOAOD", "NANOAODSIM", "RAW", "RECO", "GEN-SIM"}
	eras   = []string{"Run2016B", "Run2017F", "Run2018A", "Run2018D", "RunIISummer20UL18", "RunIIAutumn18", "Run3Summer22", "Run2024C"}
)

// Generate writes the inventory into an empty, migrated database.
// progress, if not nil, is called now and then with what is done so far.
func Generate(ctx context.Context, d *db.DB, spec Spec, progress func(Stats)) (Stats, error) {
	if err := spec.check(); err != nil {
		return Stats{}, err
	}
	var n int
	if err := d.GetContext(ctx, &n, "SELECT COUNT(*) FROM datasets"); err != nil {
		return Stats{}, err
	}
	if n > 0 {
		return Stats{}, fmt.Errorf("synth: the database already holds %d datasets; generate into an empty one", n)
	}
	return generate(ctx, spec, dbSink{newBulk(d)}, progress)
}

func (spec Spec) check() error {
	if spec.Sites < 1 || spec.Sites > 65535 || spec.Datasets < 1 || spec.BlocksPerDataset < 1 || spec.ReplicasPerBlock < 1 || spec.ReplicasPerBlock > 5 {
		return fmt.Errorf("synth: sites 1..65535, datasets >= 1, blocks per dataset >= 1, replicas per block 1..5")
	}
	return nil
}

// generate produces the inventory row by row into w, parents first.
func generate(ctx context.Context, spec Spec, w sink, progress func(Stats)) (Stats, error) {
	var st Stats
	rng := rand.New(rand.NewPCG(spec.Seed, 0x5eed))

	// Sites: ~10% tape, a few not ready.
	type siteInfo struct {
		tape bool
		used int64
	}
	sites := make([]siteInfo, spec.Sites+1)
	for i := 1; i <= spec.Sites; i++ {
		tape := i%10 == 0
		typ, name := "disk", fmt.Sprintf("T2_XX_Site%03d", i)
		if tape {
			typ, name = "mss", fmt.Sprintf("T1_XX_Site%03d_MSS", i)
		}
		status := "ready"
		switch {
		case i%37 == 0:
			status = "waitroom"
		case i%53 == 0:
			status = "morgue"
		}
		sites[i].tape = tape
		if err := w.site(ctx, i, name, fmt.Sprintf("se%03d.example.org", i), typ, fmt.Sprintf("davs://se%03d.example.org:443/store", i), status); err != nil {
			return st, err
		}
		st.Sites++
	}
	for i, g := range groups {
		level := "dataset"
		if g == "DataOps" {
			level = "block"
		}
		if err := w.group(ctx, i+1, g, level); err != nil {
			return st, err
		}
		st.Groups++
	}

	// Replica count weights giving the requested mean over 1..5.
	weights := replicaWeights(spec.ReplicasPerBlock)
	mu := math.Log(spec.BlocksPerDataset) - 0.5*0.8*0.8
	blockID, lastProgress := int64(0), int64(0)
	const now = 1_760_000_000
	chosen := make([]int, 0, 5)
	for ds := 1; ds <= spec.Datasets; ds++ {
		tier := tiers[rng.IntN(len(tiers))]
		era := eras[rng.IntN(len(eras))]
		name := fmt.Sprintf("/Primary%05d/%s-v%d/%s", ds/3, era, 1+ds%3, tier)
		status := "valid"
		switch r := rng.Float64(); {
		case r < 0.05:
			status = "production"
		case r < 0.08:
			status = "deprecated"
		case r < 0.09:
			status = "invalid"
		}
		dtype := "data"
		if strings.HasSuffix(tier, "SIM") {
			dtype = "mc"
		}
		open := 0
		if status == "production" {
			open = 1
		}
		last := now - rng.Int64N(4*365*86400)
		if err := w.dataset(ctx, ds, name, status, dtype, fmt.Sprintf("CMSSW_%d_%d_%d", 8+rng.IntN(7), rng.IntN(6), rng.IntN(20)), last, open); err != nil {
			return st, err
		}
		st.Datasets++

		// The dataset's replicas: k distinct sites, one owner group each.
		k := min(pick(rng, weights), spec.Sites) // distinct sites: no more than there are
		chosen = chosen[:0]
		for len(chosen) < k {
			s := 1 + rng.IntN(spec.Sites)
			dup := false
			for _, c := range chosen {
				dup = dup || c == s
			}
			if !dup {
				chosen = append(chosen, s)
			}
		}
		group := make([]int, len(chosen))
		for i, s := range chosen {
			group[i] = 1 + rng.IntN(len(groups))
			if sites[s].tape {
				group[i] = 2 // DataOps custodial copies on tape
			}
			if err := w.datasetReplica(ctx, ds, s, open, group[i]); err != nil {
				return st, err
			}
			st.DatasetReplicas++
		}
		nblocks := max(1, int(math.Round(math.Exp(mu+0.8*rng.NormFloat64()))))
		for b := 0; b < nblocks; b++ {
			blockID++
			// Log-normal block sizes: median ~2 GB, long tail to TBs.
			size := int64(math.Exp(math.Log(2e9) + 1.2*rng.NormFloat64()))
			nfiles := max(1, int(size/int64(2.5e9))+rng.IntN(5))
			bopen := 0
			if open == 1 && b == nblocks-1 {
				bopen = 1
			}
			if err := w.block(ctx, blockID, ds, uuid(rng), size, nfiles, bopen, last); err != nil {
				return st, err
			}
			st.Blocks++
			// Each dataset replica holds each block with high probability,
			// and at least one replica exists.
			placed := 0
			for i, s := range chosen {
				if i > 0 && rng.Float64() > 0.97 {
					continue
				}
				complete, rsize, rfiles, flags := 1, size, nfiles, 0
				if rng.Float64() < spec.IncompleteFrac {
					complete = 0
					rfiles = rng.IntN(nfiles + 1)
					rsize = size * int64(rfiles) / int64(nfiles)
				}
				if sites[s].tape {
					flags = 1
				}
				if err := w.blockReplica(ctx, blockID, s, group[i], flags, complete, rsize, rfiles, last); err != nil {
					return st, err
				}
				sites[s].used += rsize
				st.Bytes += rsize
				st.BlockReplicas++
				placed++
			}
			_ = placed
		}
		if progress != nil && spec.ReportEveryBlocks > 0 && blockID-lastProgress >= int64(spec.ReportEveryBlocks) {
			lastProgress = blockID
			progress(st)
		}
	}
	// Quotas put disk sites around the target occupancy (±10%).
	for i := 1; i <= spec.Sites; i++ {
		if sites[i].tape {
			continue
		}
		occ := spec.TargetOccupancy * (0.9 + 0.2*rng.Float64())
		quota := int64(float64(sites[i].used) / occ)
		if quota == 0 {
			quota = 1e12
		}
		if err := w.quota(ctx, i, quota); err != nil {
			return st, err
		}
	}
	if err := w.finish(ctx); err != nil {
		return st, err
	}
	if progress != nil {
		progress(st)
	}
	return st, nil
}

func replicaWeights(mean float64) []float64 {
	// Weights proportional to exp(a*k) over k=1..5; find a by bisection.
	lo, hi := -10.0, 10.0
	w := make([]float64, 5)
	for it := 0; it < 60; it++ {
		a := (lo + hi) / 2
		var sum, m float64
		for k := 1; k <= 5; k++ {
			w[k-1] = math.Exp(a * float64(k))
			sum += w[k-1]
			m += float64(k) * w[k-1]
		}
		if m/sum < mean {
			lo = a
		} else {
			hi = a
		}
	}
	var sum float64
	for _, x := range w {
		sum += x
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

func pick(rng *rand.Rand, w []float64) int {
	r := rng.Float64()
	for i, x := range w {
		if r < x {
			return i + 1
		}
		r -= x
	}
	return len(w)
}

func uuid(rng *rand.Rand) string {
	const hex = "0123456789abcdef"
	var b [36]byte
	for i := range b {
		switch i {
		case 8, 13, 18, 23:
			b[i] = '-'
		default:
			b[i] = hex[rng.IntN(16)]
		}
	}
	return string(b[:])
}
