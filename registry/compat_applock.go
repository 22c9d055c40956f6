package registry

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/dynamo-go/dynamo/scheduler"
)

// AppLocker is Dynamo's application locks (applock/check, lock, unlock):
// the scheduler's, which does not schedule a locked application. Methods
// return scheduler.ErrUnknownApp for an application it does not run.
type AppLocker interface {
	CheckAppLock(ctx context.Context, app string) (*scheduler.AppLockState, error)
	LockApp(ctx context.Context, app, user, service string, note *string) (*scheduler.AppLockState, error)
	UnlockApp(ctx context.Context, app, user, service string) (*scheduler.AppLockState, error)
	AppLocks(ctx context.Context) (map[string]*scheduler.AppLockState, error)
}

// SetAppLocks serves Dynamo's applock routes from l (until then they
// answer 503). Call it before Run.
func (s *Server) SetAppLocks(l AppLocker) { s.appLocks.Store(&l) }

func (s *Server) appLocker() (AppLocker, error) {
	l := s.appLocks.Load()
	if l == nil {
		return nil, fmt.Errorf("%w: application locks: this server runs no scheduler", ErrNotReady)
	}
	return *l, nil
}

var serviceName = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,128}$`)

// applockCall is the parsed parameters of an applock route.
type applockCall struct {
	l       AppLocker
	app     string
	service string
	note    *string
}

func (s *Server) applockParams(c *gin.Context, allowed ...string) (applockCall, error) {
	p, err := readCompatParams(c, append([]string{"app"}, allowed...)...)
	if err != nil {
		return applockCall{}, err
	}
	call := applockCall{app: p.one("app"), service: p.one("service")}
	if call.app == "" {
		return call, fieldErr("app", "missing; name the application to lock")
	}
	if call.service != "" && !serviceName.MatchString(call.service) {
		return call, fieldErr("service", "%q: want 1-128 letters, digits or _.:@-", call.service)
	}
	if _, given := p.v["note"]; given {
		n := p.one("note")
		if len(n) > 512 {
			return call, fieldErr("note", "longer than 512 bytes")
		}
		call.note = &n
	}
	call.l, err = s.appLocker()
	return call, err
}

// appLockErr makes an unknown application a 404.
func appLockErr(err error) error {
	if errors.Is(err, scheduler.ErrUnknownApp) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// dynamoAppLock is Dynamo's applock payload; service is null when none.
func dynamoAppLock(st *scheduler.AppLockState) map[string]any {
	if st == nil {
		return nil
	}
	m := map[string]any{"user": st.User, "service": nil, "lock_time": st.LockTime.Unix(), "depth": st.Depth}
	if st.Service != "" {
		m["service"] = st.Service
	}
	if st.Note != nil {
		m["note"] = *st.Note
	}
	return m
}

func (s *Server) compatAppLockCheck(c *gin.Context) {
	call, err := s.applockParams(c)
	if err != nil {
		s.abort(c, err)
		return
	}
	st, err := call.l.CheckAppLock(c.Request.Context(), call.app)
	if err != nil {
		s.abort(c, appLockErr(err))
		return
	}
	if st == nil {
		ok(c, "Not locked", nil)
		return
	}
	ok(c, "Locked", dynamoAppLock(st))
}

// compatAppLockLock queues the caller's lock: "Success" when the caller
// (with that service) now holds it, "Wait" when someone else does.
func (s *Server) compatAppLockLock(c *gin.Context) {
	call, err := s.applockParams(c, "service", "note")
	if err != nil {
		s.abort(c, err)
		return
	}
	user := principalOf(c).Name()
	st, err := call.l.LockApp(c.Request.Context(), call.app, user, call.service, call.note)
	if err != nil {
		s.abort(c, appLockErr(err))
		return
	}
	msg := "Wait"
	if st != nil && st.User == user && st.Service == call.service {
		msg = "Success"
	}
	ok(c, msg, dynamoAppLock(st))
}

// compatAppLockUnlock removes the caller's newest lock entry.
func (s *Server) compatAppLockUnlock(c *gin.Context) {
	call, err := s.applockParams(c, "service")
	if err != nil {
		s.abort(c, err)
		return
	}
	st, err := call.l.UnlockApp(c.Request.Context(), call.app, principalOf(c).Name(), call.service)
	if err != nil {
		s.abort(c, appLockErr(err))
		return
	}
	if st == nil {
		ok(c, "Unlocked", nil)
		return
	}
	ok(c, "Locked", dynamoAppLock(st))
}

// compatAppLockCurrent lists every locked application with its holder.
func (s *Server) compatAppLockCurrent(c *gin.Context) {
	if _, err := readCompatParams(c); err != nil {
		s.abort(c, err)
		return
	}
	l, err := s.appLocker()
	if err != nil {
		s.abort(c, err)
		return
	}
	held, err := l.AppLocks(c.Request.Context())
	if err != nil {
		s.abort(c, err)
		return
	}
	apps := make([]string, 0, len(held))
	for a := range held {
		apps = append(apps, a)
	}
	slices.Sort(apps)
	out := make([]map[string]any, 0, len(apps))
	for _, a := range apps {
		m := dynamoAppLock(held[a])
		m["app"] = a
		out = append(out, m)
	}
	ok(c, "", out)
}
