package srm

import (
	"io"
	"log"
)

// logger adapts a logrus writer for http.Server.ErrorLog, which gets TLS
// handshake noise from port scanners: it goes to debug level.
func logger(w io.Writer) *log.Logger { return log.New(w, "", 0) }
