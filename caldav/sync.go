package caldav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/emersion/go-ical"

	"imipd/calstore"
)

// CTag (CalendarServer's getctag) and sync-token (RFC 6578) of the calendar
// are the user's change counter (calstore Tx.ChangeCounter); go-webdav
// serves neither, so PROPFIND responses on the calendar get them added
// here, and REPORT sync-collection is answered here.

const (
	nsDAV    = "DAV:"
	nsCalDAV = "urn:ietf:params:xml:ns:caldav"
	nsCS     = "http://calendarserver.org/ns/"
)

func syncToken(n uint64) string { return syncTokenPrefix + strconv.FormatUint(n, 10) }

// isSyncCollection reports whether a REPORT body is a DAV:sync-collection.
func isSyncCollection(body []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Space == nsDAV && se.Name.Local == "sync-collection"
		}
	}
}

// xnode is a generic XML element, for rewriting go-webdav's multistatus.
type xnode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []xnode    `xml:",any"`
}

func (n *xnode) child(space, local string) *xnode {
	for i := range n.Nodes {
		if n.Nodes[i].XMLName.Space == space && n.Nodes[i].XMLName.Local == local {
			return &n.Nodes[i]
		}
	}
	return nil
}

// dropNS removes namespace declarations read from the input; the encoder
// declares what it needs.
func (n *xnode) dropNS() {
	var keep []xml.Attr
	for _, a := range n.Attrs {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		keep = append(keep, a)
	}
	n.Attrs = keep
	for i := range n.Nodes {
		n.Nodes[i].dropNS()
	}
}

// servePropfindWithCTag handles a PROPFIND on the user's calendar that
// asks for getctag or sync-token: go-webdav answers, and the two
// properties move from its 404 propstat to a 200 one with their values.
// It returns false (nothing written) for any other PROPFIND.
func (s *Server) servePropfindWithCTag(w http.ResponseWriter, r *http.Request, user string) bool {
	if path.Clean(r.URL.Path) != path.Clean(calendarPath(user)) && path.Clean(r.URL.Path) != path.Clean(homeSetPath(user)) {
		return false
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "request body: "+err.Error(), http.StatusBadRequest)
		return true
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !bytes.Contains(body, []byte("getctag")) && !bytes.Contains(body, []byte("sync-token")) {
		return false
	}
	var n uint64
	err = s.store.Read(r.Context(), func(tx calstore.Tx) error {
		var err error
		n, err = tx.ChangeCounter(user)
		if errors.Is(err, calstore.ErrNotFound) {
			err = nil
		}
		return err
	})
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return true
	}
	rec := httptest.NewRecorder()
	s.dav.ServeHTTP(rec, r)
	res := rec.Result()
	out := rec.Body.Bytes()
	if res.StatusCode == http.StatusMultiStatus {
		if patched, err := addCTag(out, calendarPath(user), n); err == nil {
			out = patched
		} else {
			s.log.Warn("caldav: could not add getctag", "err", err)
		}
	}
	for k, v := range res.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(res.StatusCode)
	w.Write(out)
	return true
}

// addCTag rewrites a multistatus: in the response for calPath, getctag and
// sync-token get the counter's values.
func addCTag(ms []byte, calPath string, n uint64) ([]byte, error) {
	var root xnode
	if err := xml.Unmarshal(ms, &root); err != nil {
		return nil, err
	}
	root.dropNS()
	for i := range root.Nodes {
		resp := &root.Nodes[i]
		if resp.XMLName.Local != "response" {
			continue
		}
		href := resp.child(nsDAV, "href")
		if href == nil {
			continue
		}
		u, err := url.Parse(strings.TrimSpace(href.Text))
		if err != nil || path.Clean(u.Path) != path.Clean(calPath) {
			continue
		}
		var found []xnode
		var stats []xnode
		for _, ps := range resp.Nodes {
			if ps.XMLName.Local != "propstat" {
				stats = append(stats, ps)
				continue
			}
			if prop := ps.child(nsDAV, "prop"); prop != nil {
				var keep []xnode
				for _, p := range prop.Nodes {
					switch {
					case p.XMLName.Space == nsCS && p.XMLName.Local == "getctag":
						found = append(found, xnode{XMLName: p.XMLName, Text: strconv.FormatUint(n, 10)})
					case p.XMLName.Space == nsDAV && p.XMLName.Local == "sync-token":
						found = append(found, xnode{XMLName: p.XMLName, Text: syncToken(n)})
					default:
						keep = append(keep, p)
					}
				}
				prop.Nodes = keep
				if len(keep) == 0 {
					continue
				}
			}
			stats = append(stats, ps)
		}
		if len(found) == 0 {
			continue
		}
		added := false
		for j := range stats {
			st := stats[j].child(nsDAV, "status")
			prop := stats[j].child(nsDAV, "prop")
			if st != nil && prop != nil && strings.Contains(st.Text, " 200 ") {
				prop.Nodes = append(prop.Nodes, found...)
				added = true
				break
			}
		}
		if !added {
			stats = append(stats, xnode{XMLName: xml.Name{Space: nsDAV, Local: "propstat"}, Nodes: []xnode{
				{XMLName: xml.Name{Space: nsDAV, Local: "prop"}, Nodes: found},
				{XMLName: xml.Name{Space: nsDAV, Local: "status"}, Text: "HTTP/1.1 200 OK"},
			}})
		}
		resp.Nodes = stats
	}
	out, err := xml.Marshal(root)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), out...), nil
}

// The sync-collection request (RFC 6578 §6.1).
type syncCollectionReq struct {
	XMLName   xml.Name `xml:"DAV: sync-collection"`
	SyncToken string   `xml:"DAV: sync-token"`
	SyncLevel string   `xml:"DAV: sync-level"`
	Prop      struct {
		Names []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"DAV: prop"`
}

// The multistatus written here uses literal prefixes.
type syncMS struct {
	XMLName   xml.Name   `xml:"D:multistatus"`
	NSD       string     `xml:"xmlns:D,attr"`
	NSC       string     `xml:"xmlns:C,attr"`
	Responses []syncResp `xml:"D:response"`
	SyncToken string     `xml:"D:sync-token"`
}

type syncResp struct {
	Href     string         `xml:"D:href"`
	Status   string         `xml:"D:status,omitempty"`
	Propstat []syncPropstat `xml:"D:propstat,omitempty"`
}

type syncPropstat struct {
	Prop   syncProp `xml:"D:prop"`
	Status string   `xml:"D:status"`
}

type syncProp struct {
	ETag        string     `xml:"D:getetag,omitempty"`
	ContentType string     `xml:"D:getcontenttype,omitempty"`
	Data        *string    `xml:"C:calendar-data,omitempty"`
	Raw         []rawEmpty `xml:",any"`
}

type rawEmpty struct {
	XMLName xml.Name
}

func escapedHref(p string) string { return (&url.URL{Path: p}).EscapedPath() }

// serveSyncCollection answers REPORT sync-collection on the user's
// calendar: the events stored and deleted since the token, with the new
// token. An unknown or future token is 403 DAV:valid-sync-token (the
// client then syncs from scratch).
func (s *Server) serveSyncCollection(w http.ResponseWriter, r *http.Request, user string, body []byte) {
	if path.Clean(r.URL.Path) != path.Clean(calendarPath(user)) {
		http.Error(w, "sync-collection is supported on the calendar "+calendarPath(user), http.StatusForbidden)
		return
	}
	var req syncCollectionReq
	if err := xml.Unmarshal(body, &req); err != nil {
		http.Error(w, "sync-collection: "+err.Error(), http.StatusBadRequest)
		return
	}
	if lvl := strings.TrimSpace(req.SyncLevel); lvl != "" && lvl != "1" {
		http.Error(w, "sync-level "+lvl+" is not supported (the calendar has no sub-collections)", http.StatusForbidden)
		return
	}
	var since uint64
	tok := strings.TrimSpace(req.SyncToken)
	invalid := false
	if tok != "" {
		v, ok := strings.CutPrefix(tok, syncTokenPrefix)
		n, err := strconv.ParseUint(v, 10, 64)
		invalid = !ok || err != nil
		since = n
	}
	var events []calstore.Event
	var cur uint64
	var deleted []string
	err := s.store.Read(r.Context(), func(tx calstore.Tx) error {
		var changed []string
		var err error
		cur, changed, deleted, err = tx.Changes(user, since)
		if errors.Is(err, calstore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, uid := range changed {
			ev, err := tx.Event(user, uid)
			if err != nil {
				return err
			}
			events = append(events, ev)
		}
		return nil
	})
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	if invalid || since > cur {
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, xml.Header+`<D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>`)
		return
	}
	var want = map[string]bool{}
	var other []rawEmpty
	for _, n := range req.Prop.Names {
		switch {
		case n.XMLName.Space == nsDAV && (n.XMLName.Local == "getetag" || n.XMLName.Local == "getcontenttype"),
			n.XMLName.Space == nsCalDAV && n.XMLName.Local == "calendar-data":
			want[n.XMLName.Local] = true
		default:
			other = append(other, rawEmpty{XMLName: n.XMLName})
		}
	}
	ms := syncMS{NSD: nsDAV, NSC: nsCalDAV, SyncToken: syncToken(cur)}
	for _, ev := range events {
		co, err := calendarObject(user, ev)
		if err != nil {
			s.log.Warn("caldav: skipping stored event", "user", user, "uid", ev.UID, "err", err)
			continue
		}
		var p syncProp
		if want["getetag"] {
			p.ETag = `"` + co.ETag + `"`
		}
		if want["getcontenttype"] {
			p.ContentType = ical.MIMEType
		}
		if want["calendar-data"] {
			var buf bytes.Buffer
			if err := ical.NewEncoder(&buf).Encode(co.Data); err == nil {
				d := buf.String()
				p.Data = &d
			}
		}
		resp := syncResp{Href: escapedHref(co.Path), Propstat: []syncPropstat{{Prop: p, Status: "HTTP/1.1 200 OK"}}}
		if len(other) > 0 {
			resp.Propstat = append(resp.Propstat, syncPropstat{Prop: syncProp{Raw: other}, Status: "HTTP/1.1 404 Not Found"})
		}
		ms.Responses = append(ms.Responses, resp)
	}
	for _, uid := range deleted {
		ms.Responses = append(ms.Responses, syncResp{Href: escapedHref(objectPath(user, uid)), Status: "HTTP/1.1 404 Not Found"})
	}
	out, err := xml.Marshal(ms)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	io.WriteString(w, xml.Header)
	w.Write(out)
}
