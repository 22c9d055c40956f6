package inventory

import "fmt"

// checkSiteProtection refuses an injected change to an existing site that
// would take protection away from the last copies it holds, unless the
// document confirms it (InjectSite.AllowProtectionChange):
//
//   - a change of storage type moves the site's replicas between
//     partitions (CMS's Tape partition is site.storage_type == MSS), and
//     so under other policies, possibly ones allowed to delete last copies;
//   - a change of status away from ready or waitroom makes its copies stop
//     counting as copies (CountsAsCopy), and morgue is how sites are
//     drained.
//
// A last copy here is a block replica at the site with no other copy that
// CountsAsCopy elsewhere. The error names how many and one of them.
func (t *Txn) checkSiteProtection(id SiteID, in InjectSite) error {
	old, ok := t.site(id)
	if !ok || in.AllowProtectionChange {
		return nil
	}
	var change string
	switch {
	case old.StorageType != in.StorageType:
		change = fmt.Sprintf("changing storage_type from %s to %s", old.StorageType, in.StorageType)
	case UsableSite(old) && !UsableSite(Site{Status: in.Status}):
		change = fmt.Sprintf("changing status from %s to %s", old.Status, in.Status)
	default:
		return nil
	}
	n, example := t.lastCopiesAt(id)
	if n == 0 {
		return nil
	}
	return invalid("%s would remove the protection of %d block replica(s) holding the last copy of their block (for example %s); "+
		"set \"allow_protection_change\": true on the site to do it anyway", change, n, example)
}

// lastCopiesAt counts the block replicas at site that are the last copy
// of their block, and names the first.
func (t *Txn) lastCopiesAt(site SiteID) (int, string) {
	if site <= 0 || int(site) >= len(t.st.sites) {
		return 0, ""
	}
	n, example := 0, ""
	for i := t.st.sites[site].repHead; i != 0; i = t.st.replicas.at(i).nextAtSite {
		r := t.st.replicas.at(i)
		if UsableCopies(t, r.block, site) > 0 {
			continue
		}
		if n == 0 {
			example = t.blockName(r.block)
		}
		n++
	}
	return n, example
}
