package fileop_test

import "github.com/jmoiron/sqlx"

type sqlxTx = sqlx.Tx
