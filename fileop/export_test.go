package fileop_test

import (
	"os"

	"github.com/jmoiron/sqlx"
	"github.com/sirupsen/logrus"

	"github.com/dynamo-go/dynamo/internal/logging"
)

type sqlxTx = sqlx.Tx

func logDiscard() *logrus.Entry {
	if os.Getenv("DYNAMO_BENCH_DEBUG") != "" {
		l := logrus.New()
		l.SetLevel(logrus.DebugLevel)
		return l.WithField("component", "fileop")
	}
	return logging.Discard()
}
