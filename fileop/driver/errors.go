package driver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Error kinds. Every error a driver returns wraps exactly one of these (via
// *Error), so callers test errors.Is(err, driver.ErrNotFound) whatever the
// protocol. Recoverable says which kinds are worth retrying.
var (
	// ErrNotFound: the path (or, for Put, an ancestor that cannot be made) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: something already exists where the operation needed nothing.
	ErrExists = errors.New("already exists")
	// ErrPermission: authentication or authorisation refused the operation.
	ErrPermission = errors.New("permission denied")
	// ErrIsDir: a file operation was applied to a directory.
	ErrIsDir = errors.New("is a directory")
	// ErrNotDir: a directory operation was applied to a file.
	ErrNotDir = errors.New("not a directory")
	// ErrNotEmpty: Rmdir on a directory that still has entries.
	ErrNotEmpty = errors.New("directory not empty")
	// ErrNoSpace: the storage area or quota is full.
	ErrNoSpace = errors.New("no space left")
	// ErrInvalidPath: the path is malformed or escapes the driver root.
	ErrInvalidPath = errors.New("invalid path")
	// ErrInvalid: the server rejected the request as malformed (HTTP 4xx without a
	// more specific meaning, xrootd kXR_ArgInvalid, EINVAL).
	ErrInvalid = errors.New("invalid request")
	// ErrUnsupported: the driver or server does not offer the operation.
	ErrUnsupported = errors.New("not supported")
	// ErrSizeMismatch: the number of bytes moved differs from the announced size.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrChecksumMismatch: the data's checksum differs from the expected one.
	ErrChecksumMismatch = errors.New("checksum mismatch")
	// ErrUnavailable: the server could not be reached or is overloaded.
	ErrUnavailable = errors.New("service unavailable")
	// ErrTimeout: the operation's deadline passed.
	ErrTimeout = errors.New("timed out")
	// ErrCanceled: the caller canceled the operation.
	ErrCanceled = errors.New("canceled")
	// ErrServer: any other server-side or protocol failure.
	ErrServer = errors.New("server error")
)

// irrecoverable kinds: retrying the same operation against the same site
// cannot succeed until someone changes the namespace or the credentials.
// Dynamo's FTS3-derived list (ENOENT, EPERM, EACCES, EEXIST, EISDIR, ENOTDIR,
// ENAMETOOLONG...) maps onto these. ErrNoSpace is deliberately recoverable:
// deletions free space and the next attempt may fit.
var irrecoverable = []error{ErrNotFound, ErrExists, ErrPermission, ErrIsDir, ErrNotDir,
	ErrNotEmpty, ErrInvalidPath, ErrInvalid, ErrUnsupported}

// Recoverable reports whether retrying the failed operation later may
// succeed. Unknown errors are recoverable: a bounded retry costs less than a
// file held forever.
func Recoverable(err error) bool {
	if err == nil {
		return true
	}
	for _, k := range irrecoverable {
		if errors.Is(err, k) {
			return false
		}
	}
	return true
}

// Error is the error type every driver returns. It wraps both its Kind (a
// sentinel above) and the underlying cause.
type Error struct {
	// Op is the driver operation ("stat", "put", ...).
	Op string
	// URL names the object, without credentials.
	URL string
	// Kind is one of the Err* sentinels.
	Kind error
	// Code is the structured code the kind was derived from, e.g. "http 404",
	// "errno ENOENT", "xrootd 3011"; empty when it came from a message.
	Code string
	// Err is the underlying cause (may be nil).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %v", e.Op, e.URL, e.Kind)
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap exposes both the kind and the cause to errors.Is/As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// NewError builds an *Error. A nil kind becomes ErrServer. If ctx is done,
// the kind becomes ErrTimeout/ErrCanceled and ctx.Err() is wrapped too,
// because a failure after cancellation says nothing about the site.
func NewError(ctx context.Context, op, url string, kind error, code string, err error) *Error {
	if ctx != nil && ctx.Err() != nil {
		cerr := ctx.Err()
		kind = ErrCanceled
		if errors.Is(cerr, context.DeadlineExceeded) {
			kind = ErrTimeout
		}
		if err == nil || !errors.Is(err, cerr) {
			err = errors.Join(cerr, err)
		}
		code = ""
	}
	if kind == nil {
		kind = ErrServer
	}
	return &Error{Op: op, URL: url, Kind: kind, Code: code, Err: err}
}

// KindFromHTTP maps an HTTP status to a kind. Operation-specific meanings
// (409 on PUT = missing parent, 405 on MKCOL = exists) are the driver's job.
func KindFromHTTP(status int) error {
	switch {
	case status == 404 || status == 410:
		return ErrNotFound
	case status == 401 || status == 403:
		return ErrPermission
	case status == 412:
		return ErrExists
	case status == 405 || status == 501:
		return ErrUnsupported
	case status == 413 || status == 507:
		return ErrNoSpace
	case status == 408 || status == 423 || status == 429 || status == 502 || status == 503 || status == 504:
		return ErrUnavailable
	case status >= 400 && status < 500:
		return ErrInvalid
	default:
		return ErrServer
	}
}

// KindFromErrno maps a POSIX errno to a kind.
func KindFromErrno(e syscall.Errno) error {
	switch e {
	case syscall.ENOENT:
		return ErrNotFound
	case syscall.EEXIST:
		return ErrExists
	case syscall.EACCES, syscall.EPERM, syscall.EROFS:
		return ErrPermission
	case syscall.EISDIR:
		return ErrIsDir
	case syscall.ENOTDIR:
		return ErrNotDir
	case syscall.ENOTEMPTY:
		return ErrNotEmpty
	case syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG:
		return ErrNoSpace
	case syscall.ENAMETOOLONG:
		return ErrInvalidPath
	case syscall.EINVAL:
		return ErrInvalid
	case syscall.ENOSYS, syscall.EOPNOTSUPP:
		return ErrUnsupported
	case syscall.ETIMEDOUT:
		return ErrTimeout
	case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EAGAIN:
		return ErrUnavailable
	default:
		return ErrServer
	}
}

// XRootD server error codes (XProtocol.hh, kXR_*), the ones we classify.
const (
	XrdArgInvalid    = 3000
	XrdArgMissing    = 3001
	XrdArgTooLong    = 3002
	XrdFileLocked    = 3003
	XrdFSError       = 3005
	XrdIOError       = 3007
	XrdNoMemory      = 3008
	XrdNoSpace       = 3009
	XrdNotAuthorized = 3010
	XrdNotFound      = 3011
	XrdServerError   = 3012
	XrdUnsupported   = 3013
	XrdNoServer      = 3014
	XrdNotFile       = 3015
	XrdIsDirectory   = 3016
	XrdCancelled     = 3017
	XrdItExists      = 3018
	XrdChkSumErr     = 3019
	XrdInProgress    = 3020
	XrdOverQuota     = 3021
	XrdOverloaded    = 3024
	XrdFSReadOnly    = 3025
	XrdAuthFailed    = 3030
	XrdReqTimedOut   = 3034
)

// KindFromXRootD maps an XRootD kXR_* server error code to a kind.
func KindFromXRootD(code int) error {
	switch code {
	case XrdNotFound:
		return ErrNotFound
	case XrdItExists:
		return ErrExists
	case XrdNotAuthorized, XrdAuthFailed, XrdFSReadOnly:
		return ErrPermission
	case XrdIsDirectory:
		return ErrIsDir
	case XrdNotFile:
		return ErrNotDir
	case XrdNoSpace, XrdOverQuota:
		return ErrNoSpace
	case XrdArgInvalid, XrdArgMissing:
		return ErrInvalid
	case XrdArgTooLong:
		return ErrInvalidPath
	case XrdUnsupported:
		return ErrUnsupported
	case XrdChkSumErr:
		return ErrChecksumMismatch
	case XrdFileLocked, XrdNoServer, XrdInProgress, XrdOverloaded, XrdNoMemory:
		return ErrUnavailable
	case XrdReqTimedOut:
		return ErrTimeout
	case XrdCancelled:
		return ErrCanceled
	default:
		return ErrServer
	}
}

// messageKinds is the fallback for errors that carry no structured code
// (tool output, gfal2-style text). Order matters: the first match wins, so
// more specific phrases come first.
var messageKinds = []struct {
	sub  string
	kind error
}{
	{"no such file", ErrNotFound},
	{"not found", ErrNotFound},
	{"unable to locate", ErrNotFound},
	{"file exists", ErrExists},
	{"already exists", ErrExists},
	{"permission denied", ErrPermission},
	{"not authorized", ErrPermission},
	{"proxy expired", ErrPermission},
	{"is a directory", ErrIsDir},
	{"not a directory", ErrNotDir},
	{"directory not empty", ErrNotEmpty},
	{"no space", ErrNoSpace},
	{"quota", ErrNoSpace},
	{"connection refused", ErrUnavailable},
	{"connection reset", ErrUnavailable},
	{"timed out", ErrTimeout},
	{"timeout", ErrTimeout},
	{"operation expired", ErrTimeout},
}

// KindFromMessage classifies free text. Use it only when no structured code
// exists; it returns ErrServer when nothing matches.
func KindFromMessage(msg string) error {
	m := strings.ToLower(msg)
	for _, mk := range messageKinds {
		if strings.Contains(m, mk.sub) {
			return mk.kind
		}
	}
	return ErrServer
}
