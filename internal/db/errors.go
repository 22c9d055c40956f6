package db

import (
	"errors"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// ErrorKind classifies a database error for retry and mapping decisions.
type ErrorKind int

const (
	KindOther     ErrorKind = iota
	KindDuplicate           // unique key violation (MySQL 1062, SQLite UNIQUE/PRIMARY KEY constraint)
	KindDeadlock            // MySQL 1213: the transaction was rolled back; retry it
	KindLockWait            // MySQL 1205: lock wait timeout; retry it
	KindBusy                // SQLite SQLITE_BUSY/LOCKED: retry it
)

func (k ErrorKind) String() string {
	switch k {
	case KindDuplicate:
		return "duplicate"
	case KindDeadlock:
		return "deadlock"
	case KindLockWait:
		return "lock wait timeout"
	case KindBusy:
		return "database busy"
	}
	return "other"
}

// MySQL server error numbers we act on.
const (
	mysqlDuplicate = 1062
	mysqlLockWait  = 1205
	mysqlDeadlock  = 1213
)

// SQLite primary result codes (the low byte of the extended code).
const (
	sqliteBusy       = 5
	sqliteLocked     = 6
	sqliteConstraint = 19
)

// sqliteCoder is implemented by modernc.org/sqlite's *Error.
type sqliteCoder interface{ Code() int }

// Classify tells what kind of database error err is. It looks at structured
// codes first (MySQL error numbers, SQLite result codes) and falls back to
// the message only for SQLite constraint errors, whose extended code does
// not say which constraint failed.
func Classify(err error) ErrorKind {
	if err == nil {
		return KindOther
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case mysqlDuplicate:
			return KindDuplicate
		case mysqlDeadlock:
			return KindDeadlock
		case mysqlLockWait:
			return KindLockWait
		}
		return KindOther
	}
	var se sqliteCoder
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqliteBusy, sqliteLocked:
			return KindBusy
		case sqliteConstraint:
			msg := err.Error()
			if strings.Contains(msg, "UNIQUE") || strings.Contains(msg, "PRIMARY KEY") {
				return KindDuplicate
			}
		}
	}
	return KindOther
}

// Retryable reports whether a transaction that failed with err may succeed
// if run again unchanged.
func Retryable(err error) bool {
	switch Classify(err) {
	case KindDeadlock, KindLockWait, KindBusy:
		return true
	}
	return false
}

// IsDuplicate reports whether err is a unique-key violation.
func IsDuplicate(err error) bool { return Classify(err) == KindDuplicate }
