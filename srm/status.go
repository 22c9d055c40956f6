package srm

// StatusCode is an SRM v2.2 TStatusCode. Its integer value is the index in
// the WSDL enumeration, which is also what the request database stores
// (compatible with StoRM's storm_db).
type StatusCode int

// The TStatusCode values, in WSDL order.
const (
	SRM_SUCCESS StatusCode = iota
	SRM_FAILURE
	SRM_AUTHENTICATION_FAILURE
	SRM_AUTHORIZATION_FAILURE
	SRM_INVALID_REQUEST
	SRM_INVALID_PATH
	SRM_FILE_LIFETIME_EXPIRED
	SRM_SPACE_LIFETIME_EXPIRED
	SRM_EXCEED_ALLOCATION
	SRM_NO_USER_SPACE
	SRM_NO_FREE_SPACE
	SRM_DUPLICATION_ERROR
	SRM_NON_EMPTY_DIRECTORY
	SRM_TOO_MANY_RESULTS
	SRM_INTERNAL_ERROR
	SRM_FATAL_INTERNAL_ERROR
	SRM_NOT_SUPPORTED
	SRM_REQUEST_QUEUED
	SRM_REQUEST_INPROGRESS
	SRM_REQUEST_SUSPENDED
	SRM_ABORTED
	SRM_RELEASED
	SRM_FILE_PINNED
	SRM_FILE_IN_CACHE
	SRM_SPACE_AVAILABLE
	SRM_LOWER_SPACE_GRANTED
	SRM_DONE
	SRM_PARTIAL_SUCCESS
	SRM_REQUEST_TIMED_OUT
	SRM_LAST_COPY
	SRM_FILE_BUSY
	SRM_FILE_LOST
	SRM_FILE_UNAVAILABLE
	SRM_CUSTOM_STATUS
)

var statusNames = [...]string{"SRM_SUCCESS", "SRM_FAILURE", "SRM_AUTHENTICATION_FAILURE", "SRM_AUTHORIZATION_FAILURE",
	"SRM_INVALID_REQUEST", "SRM_INVALID_PATH", "SRM_FILE_LIFETIME_EXPIRED", "SRM_SPACE_LIFETIME_EXPIRED",
	"SRM_EXCEED_ALLOCATION", "SRM_NO_USER_SPACE", "SRM_NO_FREE_SPACE", "SRM_DUPLICATION_ERROR",
	"SRM_NON_EMPTY_DIRECTORY", "SRM_TOO_MANY_RESULTS", "SRM_INTERNAL_ERROR", "SRM_FATAL_INTERNAL_ERROR",
	"SRM_NOT_SUPPORTED", "SRM_REQUEST_QUEUED", "SRM_REQUEST_INPROGRESS", "SRM_REQUEST_SUSPENDED",
	"SRM_ABORTED", "SRM_RELEASED", "SRM_FILE_PINNED", "SRM_FILE_IN_CACHE", "SRM_SPACE_AVAILABLE",
	"SRM_LOWER_SPACE_GRANTED", "SRM_DONE", "SRM_PARTIAL_SUCCESS", "SRM_REQUEST_TIMED_OUT", "SRM_LAST_COPY",
	"SRM_FILE_BUSY", "SRM_FILE_LOST", "SRM_FILE_UNAVAILABLE", "SRM_CUSTOM_STATUS"}

// String returns the WSDL name ("SRM_SUCCESS").
func (s StatusCode) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return "SRM_CUSTOM_STATUS"
	}
	return statusNames[s]
}

// ParseStatusCode maps a WSDL name to its code; ok is false when unknown.
func ParseStatusCode(name string) (StatusCode, bool) {
	for i, n := range statusNames {
		if n == name {
			return StatusCode(i), true
		}
	}
	return SRM_CUSTOM_STATUS, false
}

// Final reports whether a request-level status ends the request.
func (s StatusCode) Final() bool {
	switch s {
	case SRM_REQUEST_QUEUED, SRM_REQUEST_INPROGRESS, SRM_REQUEST_SUSPENDED:
		return false
	}
	return true
}

// summarize derives a request status from file outcomes: all ok → SUCCESS,
// none → FAILURE, mixed → PARTIAL_SUCCESS (as StoRM and dCache do).
func summarize(ok, total int) StatusCode {
	switch {
	case total > 0 && ok == total:
		return SRM_SUCCESS
	case ok == 0:
		return SRM_FAILURE
	default:
		return SRM_PARTIAL_SUCCESS
	}
}
