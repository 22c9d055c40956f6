package projects

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/stager"
)

func (m *Manager) insertProject(ctx context.Context, p *project) error {
	return m.d.InTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO projects (name, dataset, site, state, lookahead, created, ended) VALUES (?, ?, ?, ?, ?, ?, 0)`,
			p.Name, p.Dataset, p.Site, p.State, p.LookAhead, p.Created)
		if err != nil {
			return fmt.Errorf("projects: storing project %s: %w", p.Name, err)
		}
		if p.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		if p.Owner != "" {
			if _, err := tx.ExecContext(ctx, "INSERT INTO project_owners (project_id, user_name) VALUES (?, ?)", p.ID, p.Owner); err != nil {
				return fmt.Errorf("projects: storing the owner of %s: %w", p.Name, err)
			}
		}
		// Batched inserts: datasets have tens of thousands of files.
		const batch = 200
		for i := 0; i < len(p.files); i += batch {
			q := "INSERT INTO project_files (project_id, idx, lfn, size, state, priority, rated, consumer, request_id, surl, turl, error, updated) VALUES "
			var args []any
			for j, f := range p.files[i:min(i+batch, len(p.files))] {
				if j > 0 {
					q += ", "
				}
				q += "(?, ?, ?, ?, ?, ?, 0, 0, 0, ?, '', '', ?)"
				args = append(args, p.ID, f.Idx, f.LFN, f.Size, f.State, f.Priority, f.SURL, p.Created)
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("projects: storing files of %s: %w", p.Name, err)
			}
		}
		return nil
	})
}

func (m *Manager) saveProject(ctx context.Context, p *project) error {
	if _, err := m.d.ExecContext(ctx, "UPDATE projects SET state = ?, ended = ? WHERE id = ?", p.State, p.Ended, p.ID); err != nil {
		return fmt.Errorf("projects: saving project %s: %w", p.Name, err)
	}
	return nil
}

func (m *Manager) saveFile(ctx context.Context, f *pfile) error {
	_, err := m.d.ExecContext(ctx, `UPDATE project_files SET state = ?, priority = ?, rated = ?, consumer = ?, request_id = ?, surl = ?, turl = ?, error = ?, updated = ?
		WHERE project_id = ? AND idx = ?`, f.State, f.Priority, f.Rated, f.Consumer, f.RequestID, f.SURL, f.TURL, truncate(f.Error, 2000),
		m.now().UnixNano(), f.p.ID, f.Idx)
	return err
}

func (m *Manager) saveConsumer(ctx context.Context, p *project, c *consumer) error {
	q := m.d.Upsert("project_consumers", []string{"project_id", "cpid", "name", "state", "last_seen"},
		[]string{"project_id", "cpid"}, []string{"state", "last_seen"})
	if _, err := m.d.ExecContext(ctx, q, p.ID, c.CPID, c.Name, c.State, c.LastSeen); err != nil {
		return fmt.Errorf("projects: saving process %d of %s: %w", c.CPID, p.Name, err)
	}
	return nil
}

// load reads the running projects and reconciles their staging and ready
// files with the stager (a completion may have happened while no manager
// was subscribed, or the request may be gone).
func (m *Manager) load(ctx context.Context) error {
	var rows []struct {
		ID        int64  `db:"id"`
		Name      string `db:"name"`
		Dataset   string `db:"dataset"`
		Site      string `db:"site"`
		State     string `db:"state"`
		LookAhead int    `db:"lookahead"`
		Created   int64  `db:"created"`
		Ended     int64  `db:"ended"`
		Owner     string `db:"owner"`
	}
	if err := m.d.SelectContext(ctx, &rows, `SELECT p.id, p.name, p.dataset, p.site, p.state, p.lookahead, p.created, p.ended,
		COALESCE(o.user_name, '') AS owner FROM projects p LEFT JOIN project_owners o ON o.project_id = p.id WHERE p.state = ?`, ProjectRunning); err != nil {
		return fmt.Errorf("projects: loading: %w", err)
	}
	for _, r := range rows {
		p := &project{ID: r.ID, Name: r.Name, Dataset: r.Dataset, Site: r.Site, State: r.State, LookAhead: r.LookAhead, Owner: r.Owner,
			Created: r.Created, Ended: r.Ended, consumers: map[int64]*consumer{}}
		var files []struct {
			Idx       int       `db:"idx"`
			LFN       string    `db:"lfn"`
			Size      int64     `db:"size"`
			State     FileState `db:"state"`
			Priority  int       `db:"priority"`
			Rated     bool      `db:"rated"`
			Consumer  int64     `db:"consumer"`
			RequestID int64     `db:"request_id"`
			SURL      string    `db:"surl"`
			TURL      string    `db:"turl"`
			Error     string    `db:"error"`
		}
		if err := m.d.SelectContext(ctx, &files, `SELECT idx, lfn, size, state, priority, rated, consumer, request_id, surl, turl, error
			FROM project_files WHERE project_id = ? ORDER BY idx`, p.ID); err != nil {
			return fmt.Errorf("projects: loading files of %s: %w", p.Name, err)
		}
		for _, f := range files {
			p.files = append(p.files, &pfile{p: p, Idx: f.Idx, LFN: f.LFN, Size: f.Size, State: f.State, Priority: f.Priority, Rated: f.Rated,
				Consumer: f.Consumer, RequestID: f.RequestID, SURL: f.SURL, TURL: f.TURL, Error: f.Error})
		}
		var cons []consumer
		if err := m.d.SelectContext(ctx, &cons, `SELECT cpid, name, state, last_seen FROM project_consumers WHERE project_id = ?`, p.ID); err != nil {
			return fmt.Errorf("projects: loading processes of %s: %w", p.Name, err)
		}
		for i := range cons {
			c := cons[i]
			p.consumers[c.CPID] = &c
			p.nextCPID = max(p.nextCPID, c.CPID)
		}
		// Ask the stager first (no lock held: Lookup may read the
		// database), then publish the project with its files reconciled.
		results := map[int64]stager.Result{}
		for _, f := range p.files {
			if f.State != FileStaging && f.State != FileReady {
				continue
			}
			res, err := m.opt.Stager.Lookup(ctx, f.RequestID)
			if err != nil {
				m.log.WithError(err).WithField("request", f.RequestID).Warn("stager request of a staged file is gone; restaging")
				res = stager.Result{ID: f.RequestID, State: stager.StateExpired}
			}
			results[f.RequestID] = res
		}
		m.mu.Lock()
		if _, ok := m.projects[p.Name]; ok || m.reserved[p.Name] {
			// Started in this process before Run: the memory is newer.
			m.mu.Unlock()
			continue
		}
		m.projects[p.Name] = p
		for _, f := range p.files {
			if f.State != FileStaging && f.State != FileReady {
				continue
			}
			m.byReq[f.RequestID] = f
			res := results[f.RequestID]
			if f.State == FileReady && (res.State == stager.StateReleased || res.State == stager.StateAborted) {
				res.State = stager.StateExpired // the pin is gone: stage again
			}
			if res.State != stager.StateReady || f.State == FileStaging {
				m.apply(ctx, f, res)
			}
		}
		m.mu.Unlock()
		m.log.WithField("project", p.Name).WithField("files", len(p.files)).Info("project resumed")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
