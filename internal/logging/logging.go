// Package logging builds the process's logrus logger. Libraries never log
// through a global: they receive a *logrus.Entry carrying a "component"
// field, made with For.
package logging

import (
	"fmt"
	"io"
	"strings"

	"github.com/sirupsen/logrus"
)

// New returns a logger writing to w in the given format ("text" or "json")
// at the given level ("debug", "info", "warn", "error").
func New(w io.Writer, format, level string) (*logrus.Logger, error) {
	l := logrus.New()
	l.SetOutput(w)
	switch strings.ToLower(format) {
	case "", "text":
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05.000"})
	case "json":
		l.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	l.SetLevel(lvl)
	return l, nil
}

// For returns an entry for one component.
func For(l *logrus.Logger, component string) *logrus.Entry {
	return l.WithField("component", component)
}

// Discard is a logger that drops everything, for tests and quiet tools.
func Discard() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}
