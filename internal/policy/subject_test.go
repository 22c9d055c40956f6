package policy

// rep is the test subject: a flat replica view, the shape Detox is expected
// to bind. Block-level fields hold one block replica; owners/onTapeBlocks
// hold every block for the Any bindings.
type rep struct {
	name             string
	status           int // index into DatasetStatuses
	onTape           int // 10 + index into TapeCoverages, to prove codes are the caller's
	lastUpdate       int64
	size             int64
	usageRank        float64
	numAccess        float64
	otherCopies      float64
	lastBlockCreated int64
	incomplete       bool
	enforcer         bool
	protectedSite    bool
	unhandled        bool
	tapeRequested    bool
	locked           bool
	lastTransferSrc  bool
	brOnTape         bool
	owner            string
	brLastUpdate     int64
	site             string
	siteStatus       int
	storage          int

	owners       []string // all block owners (for AnyString)
	blocksOnTape []bool   // per block (for AnyBool)
}

func codes(values []string, base int) map[string]int {
	m := map[string]int{}
	for i, v := range values {
		m[v] = base + i
	}
	return m
}

// repBindings binds every replica-context variable the tests and the
// benchmark use, with scalar accessors.
func repBindings() *Bindings[*rep] {
	b := NewBindings[*rep]()
	b.String("dataset.name", func(r *rep) string { return r.name }).
		Enum("dataset.status", func(r *rep) int { return r.status }, codes(DatasetStatuses, 0)).
		Enum("dataset.on_tape", func(r *rep) int { return r.onTape }, codes(TapeCoverages, 10)).
		Time("dataset.last_update", func(r *rep) int64 { return r.lastUpdate }).
		Bytes("dataset.size", func(r *rep) int64 { return r.size }).
		Bytes("replica.size", func(r *rep) int64 { return r.size }).
		Number("dataset.usage_rank", func(r *rep) float64 { return r.usageRank }).
		Number("replica.num_access", func(r *rep) float64 { return r.numAccess }).
		Number("replica.num_full_other_copy_common_owner", func(r *rep) float64 { return r.otherCopies }).
		Time("replica.last_block_created", func(r *rep) int64 { return r.lastBlockCreated }).
		Bool("replica.incomplete", func(r *rep) bool { return r.incomplete }).
		Bool("replica.enforcer_protected", func(r *rep) bool { return r.enforcer }).
		Bool("dataset.on_protected_site", func(r *rep) bool { return r.protectedSite }).
		Bool("dataset.unhandled_copy_exists", func(r *rep) bool { return r.unhandled }).
		Bool("dataset.tape_copy_requested", func(r *rep) bool { return r.tapeRequested }).
		Bool("blockreplica.is_locked", func(r *rep) bool { return r.locked }).
		Bool("blockreplica.is_last_transfer_source", func(r *rep) bool { return r.lastTransferSrc }).
		Bool("blockreplica.on_tape", func(r *rep) bool { return r.brOnTape }).
		String("blockreplica.owner", func(r *rep) string { return r.owner }).
		Time("blockreplica.last_update", func(r *rep) int64 { return r.brLastUpdate }).
		String("site.name", func(r *rep) string { return r.site }).
		Enum("site.status", func(r *rep) int { return r.siteStatus }, codes(SiteStatuses, 0)).
		Enum("site.storage_type", func(r *rep) int { return r.storage }, codes(StorageTypes, 0))
	return b
}

// fullBindings binds every catalog variable: the repBindings ones, the
// rest to zero values, so any parsed condition compiles.
func fullBindings() *Bindings[*rep] {
	b := repBindings()
	for _, v := range Variables() {
		if v.Scope == ScopeConst || b.Bound(v.Name) {
			continue
		}
		switch v.Type {
		case TypeString:
			b.String(v.Name, func(*rep) string { return "" })
		case TypeNumber:
			b.Number(v.Name, func(*rep) float64 { return 0 })
		case TypeBytes:
			b.Bytes(v.Name, func(*rep) int64 { return 0 })
		case TypeTime:
			b.Time(v.Name, func(*rep) int64 { return 0 })
		case TypeBool:
			b.Bool(v.Name, func(*rep) bool { return false })
		case TypeEnum:
			b.Enum(v.Name, func(*rep) int { return 0 }, codes(v.Enum, 0))
		}
	}
	return b
}
