package posixfs_test

import (
	"testing"

	"github.com/dynamo-go/dynamo/srm/fs/fstest"
	"github.com/dynamo-go/dynamo/srm/fs/posixfs"
)

func TestConformance(t *testing.T) { fstest.Run(t, posixfs.New(), t.TempDir()) }
