package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/srm/internal/soapxml"
)

// Ping returns the server's SRM version ("v2.2") and its otherInfo.
func (c *Client) Ping(ctx context.Context) (string, map[string]string, error) {
	n, err := c.call(ctx, "srmPing", "")
	if err != nil {
		return "", nil, err
	}
	info := map[string]string{}
	for _, e := range n.Child("otherInfo").All("extraInfoArray") {
		info[e.Str("key")] = e.Str("value")
	}
	return n.Str("versionInfo"), info, nil
}

// Entry is one srmLs result.
type Entry struct {
	Path     string
	Size     int64
	IsDir    bool
	Mode     string // owner permission, e.g. "RW"
	ModTime  time.Time
	Checksum string // adler32, "" if unknown
	Locality string // ONLINE, NEARLINE, ONLINE_AND_NEARLINE
	Children []Entry
}

func entry(n *soapxml.Node) Entry {
	e := Entry{Path: n.Str("path"), IsDir: n.Str("type") == "DIRECTORY", Locality: n.Str("fileLocality")}
	e.Size, _ = n.Int("size", 0)
	if t, err := time.Parse(time.RFC3339, n.Str("lastModificationTime")); err == nil {
		e.ModTime = t
	}
	if strings.EqualFold(n.Str("checkSumType"), "adler32") {
		e.Checksum = n.Str("checkSumValue")
	}
	e.Mode = n.Child("ownerPermission").Str("mode")
	for _, k := range n.Child("arrayOfSubPaths").All("pathDetailArray") {
		e.Children = append(e.Children, entry(k))
	}
	return e
}

// Stat describes one SURL (srmLs with numOfLevels=0 and full details).
func (c *Client) Stat(ctx context.Context, surl string) (Entry, error) {
	n, err := c.call(ctx, "srmLs", surlArray("arrayOfSURLs", []string{surl})+
		"<fullDetailedList>true</fullDetailedList><numOfLevels>0</numOfLevels>")
	if err != nil {
		return Entry{}, err
	}
	d := n.Child("details").Child("pathDetailArray")
	if d == nil {
		return Entry{}, status("srmLs", surl, n)
	}
	if err := status("srmLs", surl, d.Child("status")); err != nil {
		return Entry{}, err
	}
	return entry(d), nil
}

// List returns the entries of directory surl, paging with offset/count
// when the server answers SRM_TOO_MANY_RESULTS or pageSize is set.
func (c *Client) List(ctx context.Context, surl string, pageSize int) ([]Entry, error) {
	var out []Entry
	offset := 0
	for {
		body := surlArray("arrayOfSURLs", []string{surl}) + "<fullDetailedList>true</fullDetailedList><numOfLevels>1</numOfLevels>" +
			"<offset>" + strconv.Itoa(offset) + "</offset>"
		if pageSize > 0 {
			body += "<count>" + strconv.Itoa(pageSize) + "</count>"
		}
		n, err := c.call(ctx, "srmLs", body)
		if err != nil {
			return nil, err
		}
		d := n.Child("details").Child("pathDetailArray")
		if d == nil {
			return nil, status("srmLs", surl, n)
		}
		if err := status("srmLs", surl, d.Child("status")); err != nil {
			return nil, err
		}
		top := status("srmLs", surl, n)
		page := entry(d).Children
		out = append(out, page...)
		more := errors.Is(top, ErrTooMany) || (pageSize > 0 && len(page) == pageSize)
		if top != nil && !errors.Is(top, ErrTooMany) {
			return nil, top
		}
		if !more || len(page) == 0 {
			return out, nil
		}
		offset += len(page)
	}
}

// Mkdir creates a directory (the parent must exist).
func (c *Client) Mkdir(ctx context.Context, surl string) error {
	n, err := c.call(ctx, "srmMkdir", "<SURL>"+esc(surl)+"</SURL>")
	if err != nil {
		return err
	}
	return status("srmMkdir", surl, n)
}

// Rmdir removes a directory, recursively when asked.
func (c *Client) Rmdir(ctx context.Context, surl string, recursive bool) error {
	n, err := c.call(ctx, "srmRmdir", "<SURL>"+esc(surl)+"</SURL><recursive>"+strconv.FormatBool(recursive)+"</recursive>")
	if err != nil {
		return err
	}
	return status("srmRmdir", surl, n)
}

// Mv renames a file or directory.
func (c *Client) Mv(ctx context.Context, from, to string) error {
	n, err := c.call(ctx, "srmMv", "<fromSURL>"+esc(from)+"</fromSURL><toSURL>"+esc(to)+"</toSURL>")
	if err != nil {
		return err
	}
	return status("srmMv", from, n)
}

// FileStatus is the per-SURL outcome of a multi-file call.
type FileStatus struct {
	SURL, Code, Explanation, TURL string
	Size                          int64
	// EstimatedWait is the server's estimatedWaitTime for a file still
	// queued or in progress (0 when the server gave none): poll no sooner.
	EstimatedWait time.Duration
}

// Err returns the file's status as an error (nil on success codes).
func (f FileStatus) Err(op string, ok ...string) error {
	for _, o := range append(ok, "SRM_SUCCESS") {
		if f.Code == o {
			return nil
		}
	}
	return &Error{Op: op, SURL: f.SURL, Code: f.Code, Explanation: f.Explanation}
}

func fileStatuses(n *soapxml.Node, surlElem string) []FileStatus {
	var out []FileStatus
	for _, s := range n.Child("arrayOfFileStatuses").All("statusArray") {
		fs := FileStatus{SURL: s.Str(surlElem), Code: s.Child("status").Str("statusCode"),
			Explanation: s.Child("status").Str("explanation"), TURL: s.Str("transferURL")}
		fs.Size, _ = s.Int("fileSize", -1)
		if w, err := s.Int("estimatedWaitTime", -1); err == nil && w > 0 {
			fs.EstimatedWait = time.Duration(w) * time.Second
		}
		out = append(out, fs)
	}
	return out
}

// Rm removes files; the returned statuses are per SURL, err is for the
// call as a whole (transport, or no file removed).
func (c *Client) Rm(ctx context.Context, surls ...string) ([]FileStatus, error) {
	n, err := c.call(ctx, "srmRm", surlArray("arrayOfSURLs", surls))
	if err != nil {
		return nil, err
	}
	return fileStatuses(n, "surl"), status("srmRm", "", n, "SRM_PARTIAL_SUCCESS")
}

// Request is an asynchronous SRM request.
type Request struct {
	Token string
	Type  string // srmPrepareToGet, srmPrepareToPut, srmBringOnline
	Files []FileStatus
	Code  string // request status
}

func (c *Client) submit(ctx context.Context, op, surlElem, items, extra string) (*Request, error) {
	n, err := c.call(ctx, op, "<arrayOfFileRequests>"+items+"</arrayOfFileRequests>"+extra)
	if err != nil {
		return nil, err
	}
	r := &Request{Token: n.Str("requestToken"), Type: op, Code: n.Child("returnStatus").Str("statusCode"), Files: fileStatuses(n, surlElem)}
	if r.Token == "" {
		if err := status(op, "", n, "SRM_REQUEST_QUEUED", "SRM_REQUEST_INPROGRESS"); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func protocolsXML(p []string) string {
	if len(p) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("<transferParameters><arrayOfTransferProtocols>")
	for _, x := range p {
		b.WriteString("<stringArray>" + esc(x) + "</stringArray>")
	}
	b.WriteString("</arrayOfTransferProtocols></transferParameters>")
	return b.String()
}

// PrepareToGet submits a get request; Wait turns it into TURLs.
func (c *Client) PrepareToGet(ctx context.Context, surls []string, protocols []string, pin time.Duration) (*Request, error) {
	var items strings.Builder
	for _, s := range surls {
		items.WriteString("<requestArray><sourceSURL>" + esc(s) + "</sourceSURL></requestArray>")
	}
	extra := protocolsXML(protocols)
	if pin > 0 {
		extra += "<desiredPinLifeTime>" + strconv.Itoa(int(pin/time.Second)) + "</desiredPinLifeTime>"
	}
	return c.submit(ctx, "srmPrepareToGet", "sourceSURL", items.String(), extra)
}

// PutFile is one target of PrepareToPut.
type PutFile struct {
	SURL string
	Size int64 // -1 unknown
}

// PrepareToPut submits a put request.
func (c *Client) PrepareToPut(ctx context.Context, files []PutFile, protocols []string, overwrite bool) (*Request, error) {
	var items strings.Builder
	for _, f := range files {
		items.WriteString("<requestArray><targetSURL>" + esc(f.SURL) + "</targetSURL>")
		if f.Size >= 0 {
			items.WriteString("<expectedFileSize>" + strconv.FormatInt(f.Size, 10) + "</expectedFileSize>")
		}
		items.WriteString("</requestArray>")
	}
	extra := protocolsXML(protocols)
	if overwrite {
		extra += "<overwriteOption>ALWAYS</overwriteOption>"
	}
	return c.submit(ctx, "srmPrepareToPut", "SURL", items.String(), extra)
}

// BringOnline submits a bring-online request for a pin of lifetime.
func (c *Client) BringOnline(ctx context.Context, surls []string, lifetime time.Duration) (*Request, error) {
	var items strings.Builder
	for _, s := range surls {
		items.WriteString("<requestArray><sourceSURL>" + esc(s) + "</sourceSURL></requestArray>")
	}
	extra := ""
	if lifetime > 0 {
		extra = "<desiredLifeTime>" + strconv.Itoa(int(lifetime/time.Second)) + "</desiredLifeTime>"
	}
	return c.submit(ctx, "srmBringOnline", "sourceSURL", items.String(), extra)
}

var statusOps = map[string][2]string{
	"srmPrepareToGet": {"srmStatusOfGetRequest", "sourceSURL"},
	"srmPrepareToPut": {"srmStatusOfPutRequest", "SURL"},
	"srmBringOnline":  {"srmStatusOfBringOnlineRequest", "sourceSURL"},
}

// Status refreshes r from the server.
func (c *Client) Status(ctx context.Context, r *Request) error {
	so := statusOps[r.Type]
	n, err := c.call(ctx, so[0], "<requestToken>"+esc(r.Token)+"</requestToken>")
	if err != nil {
		return err
	}
	r.Code = n.Child("returnStatus").Str("statusCode")
	if r.Code == "SRM_INVALID_REQUEST" || r.Code == "SRM_AUTHORIZATION_FAILURE" {
		return status(so[0], "", n)
	}
	r.Files = fileStatuses(n, so[1])
	return nil
}

// Wait polls r until it leaves QUEUED/INPROGRESS (backoff from
// PollInterval to 5 s) or ctx ends. The final per-file statuses are in
// r.Files; Wait returns an error only for the transport or the request as
// a whole.
func (c *Client) Wait(ctx context.Context, r *Request) error {
	d := c.poll
	for r.Code == "SRM_REQUEST_QUEUED" || r.Code == "SRM_REQUEST_INPROGRESS" {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		d = min(2*d, 5*time.Second)
		if err := c.Status(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// surlOp is a token + SURL list call answered with per-SURL statuses.
func (c *Client) surlOp(ctx context.Context, op, token string, surls []string) ([]FileStatus, error) {
	body := ""
	if token != "" {
		body = "<requestToken>" + esc(token) + "</requestToken>"
	}
	if len(surls) > 0 {
		body += surlArray("arrayOfSURLs", surls)
	}
	n, err := c.call(ctx, op, body)
	if err != nil {
		return nil, err
	}
	return fileStatuses(n, "surl"), status(op, "", n, "SRM_PARTIAL_SUCCESS")
}

// PutDone completes uploads.
func (c *Client) PutDone(ctx context.Context, token string, surls ...string) ([]FileStatus, error) {
	return c.surlOp(ctx, "srmPutDone", token, surls)
}

// ReleaseFiles releases pins (all files of the request when surls is empty).
func (c *Client) ReleaseFiles(ctx context.Context, token string, surls ...string) ([]FileStatus, error) {
	return c.surlOp(ctx, "srmReleaseFiles", token, surls)
}

// AbortFiles aborts some files of a request.
func (c *Client) AbortFiles(ctx context.Context, token string, surls ...string) ([]FileStatus, error) {
	return c.surlOp(ctx, "srmAbortFiles", token, surls)
}

// AbortRequest aborts a whole request.
func (c *Client) AbortRequest(ctx context.Context, token string) error {
	n, err := c.call(ctx, "srmAbortRequest", "<requestToken>"+esc(token)+"</requestToken>")
	if err != nil {
		return err
	}
	return status("srmAbortRequest", "", n)
}

// GetTURL is PrepareToGet + Wait for one SURL: it returns the TURL and the
// request token (release it with ReleaseFiles when done).
func (c *Client) GetTURL(ctx context.Context, surl string, protocols ...string) (turl, token string, err error) {
	r, err := c.PrepareToGet(ctx, []string{surl}, protocols, 0)
	if err != nil {
		return "", "", err
	}
	if err := c.Wait(ctx, r); err != nil {
		return "", r.Token, err
	}
	if len(r.Files) != 1 {
		return "", r.Token, fmt.Errorf("srm srmPrepareToGet %s: %d file statuses in the answer", surl, len(r.Files))
	}
	if err := r.Files[0].Err("srmPrepareToGet", "SRM_FILE_PINNED"); err != nil {
		return "", r.Token, err
	}
	return r.Files[0].TURL, r.Token, nil
}

// PutTURL is PrepareToPut + Wait for one SURL; upload to the TURL, then
// call PutDone(token, surl).
func (c *Client) PutTURL(ctx context.Context, surl string, size int64, overwrite bool, protocols ...string) (turl, token string, err error) {
	r, err := c.PrepareToPut(ctx, []PutFile{{surl, size}}, protocols, overwrite)
	if err != nil {
		return "", "", err
	}
	if err := c.Wait(ctx, r); err != nil {
		return "", r.Token, err
	}
	if len(r.Files) != 1 {
		return "", r.Token, fmt.Errorf("srm srmPrepareToPut %s: %d file statuses in the answer", surl, len(r.Files))
	}
	if err := r.Files[0].Err("srmPrepareToPut", "SRM_SPACE_AVAILABLE"); err != nil {
		return "", r.Token, err
	}
	return r.Files[0].TURL, r.Token, nil
}
