// Package migrations holds the SQL schema of every component, one directory per
// dialect (mysql/, sqlite/). Files are applied in lexical order and recorded in
// the schema_migrations table, so each component owns a number range:
//
//	0001-0099 inventory      0100-0199 registry     0200-0299 scheduler
//	0300-0399 detox          0400-0499 dealer       0500-0599 fileop
//	0600-0699 srm            0700-0799 consistency  0800-0899 stager/projects
//
// A migration file is never edited once it has landed on main: add a new one.
package migrations

import "embed"

// FS holds mysql/*.sql and sqlite/*.sql.
//
//go:embed mysql/*.sql sqlite/*.sql
var FS embed.FS
