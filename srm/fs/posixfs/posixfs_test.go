package posixfs_test

import (
	"testing"

	"github.com/dynamo-go/dynamo/srm/fs/fstest"
	"github.com/dynamo-go/dynamo/srm/fs/posixfs"
)

func TestConformance(t *testing.T) {
	root := t.TempDir()
	d, err := posixfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fstest.Run(t, d, root)
}
