package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"syscall"

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
	// KindUnavailable: the database did not answer in time, the connection
	// was refused or lost, or the server cannot work right now (shutting
	// down, too many connections, out of space, read-only). Nothing about
	// the statement is wrong: the same call may succeed later.
	KindUnavailable
)

// ErrTimeout marks a call that ran past its deadline (see WithCallTimeout).
// It classifies as KindUnavailable.
var ErrTimeout = errors.New("the database did not answer in time")

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
	case KindUnavailable:
		return "database unavailable"
	}
	return "other"
}

// MySQL server error numbers we act on.
const (
	mysqlDuplicate = 1062
	mysqlLockWait  = 1205
	mysqlDeadlock  = 1213
)

// MySQL server errors that say the server cannot work now, not that the
// statement is wrong: too many connections (1040, 1203), out of memory or
// resources (1037, 1041), shutting down (1053, 1077, 1078, 1079, 4031),
// disk or table full (1021, 1114), read-only (1290, 1792, 1836), query or
// connection killed (1317, 1927), access denied while connecting (1045,
// 1044: a credentials change an operator fixes; the document is fine).
var mysqlUnavailable = map[uint16]bool{
	1021: true, 1037: true, 1040: true, 1041: true, 1044: true, 1045: true, 1053: true,
	1077: true, 1078: true, 1079: true, 1114: true, 1203: true, 1290: true, 1317: true,
	1792: true, 1836: true, 1927: true, 4031: true,
}

// SQLite primary result codes (the low byte of the extended code).
const (
	sqliteBusy       = 5
	sqliteLocked     = 6
	sqliteConstraint = 19
	sqliteIOErr      = 10
	sqliteFull       = 13
	sqliteCantOpen   = 14
	sqliteReadOnly   = 8
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
		if mysqlUnavailable[me.Number] {
			return KindUnavailable
		}
		return KindOther
	}
	if lostConnection(err) {
		return KindUnavailable
	}
	var se sqliteCoder
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqliteBusy, sqliteLocked:
			return KindBusy
		case sqliteIOErr, sqliteFull, sqliteCantOpen, sqliteReadOnly:
			return KindUnavailable
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

// Temporary reports whether err says nothing about the statement or its
// data: the transaction is retryable (see Retryable) or the database is
// unavailable (see KindUnavailable). Work that failed with a temporary
// error stays queued; any other error is the work's own and final.
func Temporary(err error) bool {
	return Retryable(err) || Classify(err) == KindUnavailable
}

// Unavailable reports whether err means the database could not be reached
// or did not answer in time.
func Unavailable(err error) bool { return Classify(err) == KindUnavailable }

// FromDatabase reports whether err carries an error of the database server
// or driver (as opposed to a caller's own validation error). Its text is
// the driver's and must not be shown to clients.
func FromDatabase(err error) bool {
	var me *mysql.MySQLError
	var se sqliteCoder
	return errors.As(err, &me) || errors.As(err, &se) || lostConnection(err)
}

// lostConnection recognizes a call that failed for want of a working
// connection: refused, reset or timed out at the network level, closed by
// the driver (go-sql-driver/mysql reports "invalid connection" and closes
// the connection when a deadline cuts a call short), or past its deadline.
func lostConnection(err error) bool {
	if errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) && ne.Timeout() || errors.As(err, &oe)
}

// IsDuplicate reports whether err is a unique-key violation.
func IsDuplicate(err error) bool { return Classify(err) == KindDuplicate }
