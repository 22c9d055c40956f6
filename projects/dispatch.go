package projects

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dynamo-go/dynamo/srm/client"
)

// DeliveryStatus is the outcome of NextFile.
type DeliveryStatus int

// The outcomes, as samweb's getNextFile status codes.
const (
	// Delivered: a file and its URL (HTTP 200).
	Delivered DeliveryStatus = 200
	// Wait: nothing ready yet; ask again after RetryAfter (HTTP 202).
	Wait DeliveryStatus = 202
	// NoMore: no files left for this consumer (HTTP 204).
	NoMore DeliveryStatus = 204
)

// Delivery is what NextFile gives a consumer.
type Delivery struct {
	Status     DeliveryStatus `json:"-"`
	LFN        string         `json:"filename,omitempty"`
	URL        string         `json:"url,omitempty"`
	RetryAfter time.Duration  `json:"-"`
}

// EstablishProcess registers a consumer process of a running project and
// returns its id (cpid).
func (m *Manager) EstablishProcess(ctx context.Context, project, name string) (int64, error) {
	if len(name) > 255 {
		return 0, fmt.Errorf("%w: process name longer than 255 bytes", ErrBadRequest)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.running(project)
	if err != nil {
		return 0, err
	}
	p.nextCPID++
	c := &consumer{CPID: p.nextCPID, Name: name, State: ConsumerActive, LastSeen: m.now().UnixNano()}
	if err := m.saveConsumer(ctx, p, c); err != nil {
		p.nextCPID--
		return 0, err
	}
	p.consumers[c.CPID] = c
	return c.CPID, nil
}

// running returns the running project (m.mu held).
func (m *Manager) running(name string) (*project, error) {
	p := m.projects[name]
	if p == nil {
		return nil, fmt.Errorf("%w: project %s", ErrNotFound, name)
	}
	if p.State != ProjectRunning {
		return nil, fmt.Errorf("%w: %s", ErrEnded, name)
	}
	return p, nil
}

func (m *Manager) activeConsumer(p *project, cpid int64) (*consumer, error) {
	c := p.consumers[cpid]
	if c == nil {
		return nil, fmt.Errorf("%w: process %d of project %s", ErrNotFound, cpid, p.Name)
	}
	if c.State != ConsumerActive {
		return nil, fmt.Errorf("%w: process %d is %s", ErrConsumerEnded, cpid, c.State)
	}
	return c, nil
}

// NextFile hands consumer cpid the best ready file: highest priority
// (cached) first, then snapshot order. Each file goes to one consumer only.
// On volatile storage the file is checked (srmLs) first; one that vanished
// is unregistered and the next is tried. An ended project gives NoMore.
func (m *Manager) NextFile(ctx context.Context, project string, cpid int64) (Delivery, error) {
	for {
		m.mu.Lock()
		p, err := m.running(project)
		if errors.Is(err, ErrEnded) {
			m.mu.Unlock()
			return Delivery{Status: NoMore}, nil
		}
		if err != nil {
			m.mu.Unlock()
			return Delivery{}, err
		}
		c, err := m.activeConsumer(p, cpid)
		if err != nil {
			m.mu.Unlock()
			return Delivery{}, err
		}
		c.LastSeen = m.now().UnixNano()
		var ready []*pfile
		open := false
		for _, f := range p.files {
			switch f.State {
			case FileReady:
				ready = append(ready, f)
			case FilePending, FileStaging:
				open = true
			}
		}
		if len(ready) == 0 {
			m.mu.Unlock()
			if open {
				m.kick()
				return Delivery{Status: Wait, RetryAfter: m.cfg.RetryAfter}, nil
			}
			return Delivery{Status: NoMore}, nil
		}
		sort.SliceStable(ready, func(i, j int) bool { return ready[i].Priority > ready[j].Priority })
		f := ready[0]
		// Claim it before any network call so no other consumer gets it.
		f.Consumer = cpid
		m.setFile(ctx, f, FileDelivered, "")
		volatile := m.siteKind(p.Site) == Volatile
		dataset, site := p.Dataset, p.Site
		if dataset == snapshotDataset {
			dataset = ""
		}
		m.mu.Unlock()

		if volatile && m.opt.Resolver != nil && m.gone(ctx, f.SURL) {
			m.mu.Lock()
			m.release(ctx, f.RequestID)
			f.Consumer = 0
			m.vanished(ctx, f)
			m.mu.Unlock()
			continue
		}
		m.met.delivered.Inc()
		if m.opt.Accesses != nil {
			if err := m.opt.Accesses.RecordFileAccess(ctx, dataset, f.LFN, site, m.now()); err != nil {
				m.log.WithError(err).WithField("project", project).WithField("lfn", f.LFN).Warn("access not recorded")
			}
		}
		m.kick() // a look-ahead slot is free
		return Delivery{Status: Delivered, LFN: f.LFN, URL: f.TURL}, nil
	}
}

// gone reports whether srmLs says the SURL does not exist (other errors
// are not proof of absence: the file is delivered).
func (m *Manager) gone(ctx context.Context, surl string) bool {
	c, err := m.opt.Resolver(surl)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Stager.CallTimeout)
	defer cancel()
	_, err = c.Stat(ctx, surl)
	return errors.Is(err, client.ErrNotFound)
}

// File statuses a consumer reports.
const (
	StatusConsumed = "consumed"
	StatusSkipped  = "skipped"
)

// UpdateFileStatus records that consumer cpid consumed or skipped lfn and
// releases the file's pin. It returns ErrNotDelivered when the file is not
// currently delivered to cpid (reporting twice is an error).
func (m *Manager) UpdateFileStatus(ctx context.Context, project string, cpid int64, lfn, status string) error {
	var st FileState
	switch status {
	case StatusConsumed, "ok": // "ok" is samweb's legacy releaseFile status
		st = FileConsumed
	case StatusSkipped:
		st = FileSkipped
	default:
		return fmt.Errorf("%w: status %q is not consumed or skipped", ErrBadRequest, status)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.projects[project]
	if p == nil {
		return fmt.Errorf("%w: project %s", ErrNotFound, project)
	}
	c, err := m.activeConsumer(p, cpid)
	if err != nil {
		return err
	}
	c.LastSeen = m.now().UnixNano()
	for _, f := range p.files {
		if f.LFN != lfn {
			continue
		}
		if f.State != FileDelivered || f.Consumer != cpid {
			return fmt.Errorf("%w: %s is %s", ErrNotDelivered, lfn, f.State)
		}
		// Release before the state change is visible: the station must not
		// dispatch more before the SE resources are given back (seed).
		m.release(ctx, f.RequestID)
		m.setFile(ctx, f, st, "")
		m.met.reported.WithLabelValues(string(st)).Inc()
		return nil
	}
	return fmt.Errorf("%w: %s is not in project %s", ErrNotFound, lfn, project)
}

// EndProcess ends consumer cpid with status completed or bad; files it
// got but did not report are lost (recovery list) and released.
func (m *Manager) EndProcess(ctx context.Context, project string, cpid int64, status string) error {
	if status == "" {
		status = ConsumerCompleted
	}
	if status != ConsumerCompleted && status != ConsumerBad {
		return fmt.Errorf("%w: status %q is not completed or bad", ErrBadRequest, status)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.projects[project]
	if p == nil {
		return fmt.Errorf("%w: project %s", ErrNotFound, project)
	}
	c, err := m.activeConsumer(p, cpid)
	if err != nil {
		return err
	}
	m.endConsumer(ctx, p, c, status)
	return nil
}

// End ends the project: requests in progress are aborted, pins released,
// files delivered but not reported become lost, and the summary (with the
// recovery list) is returned. Ending an ended project returns its summary.
func (m *Manager) End(ctx context.Context, project string) (Summary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.projects[project]
	if p == nil {
		return Summary{}, fmt.Errorf("%w: project %s", ErrNotFound, project)
	}
	if p.State == ProjectEnded {
		return m.summary(p), nil
	}
	p.State, p.Ended = ProjectEnded, m.now().UnixNano()
	for _, c := range p.consumers {
		if c.State == ConsumerActive {
			m.endConsumer(ctx, p, c, ConsumerCompleted)
		}
	}
	for _, f := range p.files {
		switch f.State {
		case FileStaging, FileReady:
			m.release(ctx, f.RequestID) // aborts a get in progress
			delete(m.byReq, f.RequestID)
			f.RequestID, f.TURL = 0, ""
			m.setFile(ctx, f, FilePending, "project ended before delivery")
		}
	}
	if err := m.saveProject(ctx, p); err != nil {
		return Summary{}, err
	}
	m.met.ended.Inc()
	s := m.summary(p)
	m.log.WithField("project", p.Name).WithField("consumed", s.Counts[FileConsumed]).WithField("recovery", len(s.Recovery)).Info("project ended")
	return s, nil
}

// Summary describes a project.
type Summary struct {
	Name      string            `json:"name"`
	Dataset   string            `json:"dataset"`
	Site      string            `json:"site"`
	State     string            `json:"state"`
	Owner     string            `json:"owner,omitempty"` // the user who started it
	LookAhead int               `json:"lookahead"`
	Created   time.Time         `json:"created"`
	Ended     *time.Time        `json:"ended,omitempty"`
	Files     int               `json:"files"`
	Counts    map[FileState]int `json:"counts"`
	Consumers []ConsumerSummary `json:"processes"`
	// Recovery lists the LFNs not consumed (never delivered, skipped,
	// lost, failed, vanished): the input of a recovery project.
	Recovery []string `json:"recovery"`
}

// ConsumerSummary is one consumer process.
type ConsumerSummary struct {
	CPID      int64     `json:"cpid"`
	Name      string    `json:"name"`
	State     string    `json:"state"`
	LastSeen  time.Time `json:"last_seen"`
	Delivered int       `json:"delivered"`
	Consumed  int       `json:"consumed"`
}

// Summary returns a project's summary.
func (m *Manager) Summary(_ context.Context, project string) (Summary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.projects[project]
	if p == nil {
		return Summary{}, fmt.Errorf("%w: project %s", ErrNotFound, project)
	}
	return m.summary(p), nil
}

// List returns the summaries of the projects this manager knows (running
// and ended since it started), by name.
func (m *Manager) List(_ context.Context) []Summary {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Summary, 0, len(m.projects))
	for _, p := range m.projects {
		out = append(out, m.summary(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (m *Manager) summary(p *project) Summary {
	s := Summary{Name: p.Name, Dataset: p.Dataset, Site: p.Site, State: p.State, LookAhead: p.LookAhead, Owner: p.Owner,
		Created: time.Unix(0, p.Created).UTC(), Files: len(p.files), Counts: map[FileState]int{}, Recovery: []string{}}
	if p.Ended != 0 {
		t := time.Unix(0, p.Ended).UTC()
		s.Ended = &t
	}
	per := map[int64]*ConsumerSummary{}
	for _, c := range p.consumers {
		cs := &ConsumerSummary{CPID: c.CPID, Name: c.Name, State: c.State, LastSeen: time.Unix(0, c.LastSeen).UTC()}
		per[c.CPID] = cs
	}
	for _, f := range p.files {
		s.Counts[f.State]++
		if f.State != FileConsumed {
			s.Recovery = append(s.Recovery, f.LFN)
		}
		if cs := per[f.Consumer]; cs != nil && f.Consumer != 0 {
			cs.Delivered++
			if f.State == FileConsumed {
				cs.Consumed++
			}
		}
	}
	for _, cs := range per {
		s.Consumers = append(s.Consumers, *cs)
	}
	sort.Slice(s.Consumers, func(i, j int) bool { return s.Consumers[i].CPID < s.Consumers[j].CPID })
	return s
}
