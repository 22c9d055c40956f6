package main

import (
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

// resolvePaths makes every relative file or directory named in a
// configuration file relative to that file's directory, so that a
// configuration works whatever the working directory of the process that
// reads it (`dynamo --config /etc/dynamo/x.yaml` from anywhere). Flags and
// environment variables keep their usual meaning: relative to the
// working directory. root is the decoded document, used to tell a
// database the file names from the built-in default.
func (c *fileConfig) resolvePaths(dir string, root *yaml.Node) {
	p := func(s *string) {
		if *s != "" && !filepath.IsAbs(*s) {
			*s = filepath.Join(dir, *s)
		}
	}
	dsn := func(s *string) {
		if rest, ok := strings.CutPrefix(*s, "sqlite:"); ok && rest != "" && !filepath.IsAbs(rest) {
			*s = "sqlite:" + filepath.Join(dir, rest)
		}
	}
	if yamlconf.Lookup(root, "database") != nil {
		dsn(&c.Database)
	}
	p(&c.Inventory.PartitionsFile)

	r := &c.Registry
	p(&r.TLS.Cert)
	p(&r.TLS.Key)
	p(&r.TLS.CADir)
	p(&r.Client.TokenFile)
	p(&r.Client.Cert)
	p(&r.Client.Key)
	p(&r.Client.Proxy)
	p(&r.Client.CADir)
	for i := range r.Tokens {
		p(&r.Tokens[i].TokenFile)
	}
	for i := range r.JWTIssuers {
		p(&r.JWTIssuers[i].KeyFile)
	}

	for i := range c.StorageElements {
		se := &c.StorageElements[i]
		p(&se.Cert)
		p(&se.Key)
		p(&se.CADir)
		dsn(&se.DB)
		for j := range se.Areas {
			p(&se.Areas[j].Root)
			p(&se.Areas[j].Nearline.TapeDir)
		}
	}
	p(&c.Scheduler.Sequences)
	for i := range c.Dealer.Plugins.Enforcer.RulesFiles {
		p(&c.Dealer.Plugins.Enforcer.RulesFiles[i])
	}
}

// resolveSectionPaths is resolvePaths for the sections their own package
// decodes (fileop, detox, consistency, projects), once they are decoded.
func (c *fileConfig) resolveSectionPaths(dir string) {
	p := func(s *string) {
		if *s != "" && !filepath.IsAbs(*s) {
			*s = filepath.Join(dir, *s)
		}
	}
	p(&c.Detox.PartitionsFile)
	for name, pc := range c.Detox.Partitions {
		p(&pc.Policy)
		c.Detox.Partitions[name] = pc
	}
	d := &c.Fileop.Driver
	p(&d.CACertDir)
	p(&d.CABundle)
	p(&d.Proxy)
	p(&d.Cert)
	p(&d.Key)
	if c.Consistency != nil {
		p(&c.Consistency.WorkDir)
	}
	if pr := c.Projects; pr != nil {
		p(&pr.Credential.Cert)
		p(&pr.Credential.Key)
		p(&pr.Credential.CADir)
	}
}
