// Package caller carries who is calling from the REST server's one
// authentication middleware (registry) to the components mounted on it
// (stager, projects...), which must not import the registry's types.
package caller

import "github.com/gin-gonic/gin"

// The gin context keys. UserKey's value is also what scheduler.UserKey
// names.
const (
	UserKey     = "user"
	OperatorKey = "caller.operator"
	DNKey       = "caller.dn"
)

// Set records the caller: its name ("" when anonymous) and whether it is
// an operator for the route's target.
func Set(c *gin.Context, name string, operator bool) {
	if name != "" {
		c.Set(UserKey, name)
	}
	c.Set(OperatorKey, operator)
}

// SetDN records the subject DN of the caller's verified certificate chain
// (only when the caller authenticated with one).
func SetDN(c *gin.Context, dn string) {
	if dn != "" {
		c.Set(DNKey, dn)
	}
}

// DN is the verified certificate DN of the caller, "" unless the caller
// authenticated with a certificate or proxy over TLS (a token names a
// user, never a certificate identity).
func DN(c *gin.Context) string { return c.GetString(DNKey) }

// Name is the authenticated caller's name, "" when anonymous.
func Name(c *gin.Context) string { return c.GetString(UserKey) }

// Operator reports whether the caller is an operator for the route's
// target (operators may act on what others own).
func Operator(c *gin.Context) bool { return c.GetBool(OperatorKey) }

// May reports whether the caller may act on something owned by owner:
// its owner or an operator. Something owned by nobody ("") is the
// system's, for operators only. Routes served without the REST server's
// authentication (a component on its own, in its package tests) have no
// callers to tell apart: everything is allowed there, as before.
func May(c *gin.Context, owner string) bool {
	op, authenticated := c.Get(OperatorKey)
	if !authenticated || op == true {
		return true
	}
	return owner != "" && Name(c) == owner
}
