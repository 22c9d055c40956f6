package inventory

import "fmt"

// checkInjectNames rejects a document that names one object twice: a site,
// group or dataset listed twice, a block listed twice in its dataset, or an
// LFN given to two blocks (or twice to one). Applying such a document would
// either silently keep the last entry or run into the database's unique
// keys halfway through the write; an error naming both places tells the
// author what to fix. The errors wrap ErrInvalid.
func checkInjectNames(doc *InjectDoc) error {
	sites := make(map[string]int, len(doc.Sites))
	for i, s := range doc.Sites {
		if j, ok := sites[s.Name]; ok {
			return invalid("sites[%d] (%s): the site is listed twice in the document (also sites[%d])", i, s.Name, j)
		}
		sites[s.Name] = i
	}
	groups := make(map[string]int, len(doc.Groups))
	for i, g := range doc.Groups {
		if j, ok := groups[g.Name]; ok {
			return invalid("groups[%d] (%s): the group is listed twice in the document (also groups[%d])", i, g.Name, j)
		}
		groups[g.Name] = i
	}
	datasets := make(map[string]int, len(doc.Datasets))
	// LFN -> where it was first listed (dataset, block, file index); the
	// text is formatted only for an error, as documents hold millions.
	files := map[string][3]int{}
	fileAt := func(at [3]int) string {
		ds := doc.Datasets[at[0]]
		return fmt.Sprintf("datasets[%d].blocks[%d].files[%d] (%s#%s)", at[0], at[1], at[2], ds.Name, ds.Blocks[at[1]].Name)
	}
	for i, ds := range doc.Datasets {
		where := fmt.Sprintf("datasets[%d] (%s)", i, ds.Name)
		if j, ok := datasets[ds.Name]; ok {
			return invalid("%s: the dataset is listed twice in the document (also datasets[%d])", where, j)
		}
		datasets[ds.Name] = i
		blocks := make(map[string]int, len(ds.Blocks))
		for j, b := range ds.Blocks {
			bwhere := fmt.Sprintf("%s.blocks[%d] (%s#%s)", where, j, ds.Name, b.Name)
			if k, ok := blocks[b.Name]; ok {
				return invalid("%s: the block is listed twice in its dataset (also %s.blocks[%d])", bwhere, where, k)
			}
			blocks[b.Name] = j
			for k, f := range b.Files {
				at := [3]int{i, j, k}
				if first, ok := files[f.LFN]; ok {
					return invalid("%s: file %s is listed twice in the document (also %s); an LFN belongs to exactly one block",
						fileAt(at), f.LFN, fileAt(first))
				}
				files[f.LFN] = at
			}
		}
	}
	return nil
}
