package fileop

import (
	"errors"
	"strings"
	"testing"
)

// A request's owner reads which source failed and why (the message
// failureMessage wrote, with the site's path replaced), never a raw
// backend error.
func TestUserNoteNamesTheFailedSource(t *testing.T) {
	a := &activeSub{sub: Subscription{Op: OpTransfer, LFN: "/store/a.root"}, srcName: "T2_A", dstName: "T2_B",
		srcURL: "file:///data/a/store/a.root", dstURL: "file:///data/b/store/a.root"}
	msg := failureMessage(a, errors.New("open file:///data/a/store/a.root: not found (errno ENOENT): open /data/a/store/a.root: no such file"))
	if strings.Contains(msg, "/data/") || !strings.HasPrefix(msg, "from T2_A: open T2_A:/store/a.root: not found") {
		t.Fatalf("failure message %q", msg)
	}
	for _, tc := range []struct{ hold, msg, want string }{
		{"", msg, "retrying: " + msg},
		{"all_failed", "gave up after 3 tries; last " + msg, "all_failed: gave up after 3 tries; last " + msg},
		{"all_failed", "every source failed irrecoverably: T2_A (1 failure, last: errno ENOENT); last error: x", "all_failed: every source failed irrecoverably: T2_A (1 failure, last: errno ENOENT)"},
		{"", "open /data/a/store/a.root: EIO", "retrying after a failure"},
		{"irrecoverable", "open /data/a/store/a.root: EIO", "irrecoverable"},
	} {
		if got := userNote(tc.hold, tc.msg); got != tc.want {
			t.Errorf("userNote(%q, %q) = %q, want %q", tc.hold, tc.msg, got, tc.want)
		}
	}
}
