package caldav

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"

	"imipd/calstore"
)

// The ICS feed: GET /feed/<token>.ics serves a user's whole calendar to
// apps that subscribe to a URL and speak no CalDAV. The token is the
// credential; the store keeps only its hash (User.FeedHash).

// NewFeedToken returns a new random feed token (32 bytes, base64url) and
// the hash stored for it (User.FeedHash).
func NewFeedToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, feedHash(token), nil
}

// feedHash is the stored form of a feed token: hex SHA-256.
func feedHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// serveFeed answers GET /feed/<token>.ics with the user's calendar (the
// same VCALENDAR as imipctl export).
func (s *Server) serveFeed(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the feed is read-only", http.StatusMethodNotAllowed)
		return
	}
	token, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, feedPrefix), ".ics")
	if !ok || token == "" || strings.Contains(token, "/") {
		http.NotFound(w, r)
		return
	}
	want := []byte(feedHash(token))
	var user string
	err := s.store.Read(r.Context(), func(tx calstore.Tx) error {
		us, err := tx.Users()
		for _, u := range us {
			if u.FeedHash != "" && subtle.ConstantTimeCompare([]byte(u.FeedHash), want) == 1 {
				user = u.Address
			}
		}
		return err
	})
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	if user == "" {
		http.NotFound(w, r)
		return
	}
	var buf bytes.Buffer
	if err := s.sched.Export(r.Context(), user, &buf); err != nil {
		s.log.Error("caldav: feed", "user", user, "err", err)
		http.Error(w, "export failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Set("Cache-Control", "private, max-age=300")
	w.Header().Set("ETag", `"`+etag(buf.Bytes())+`"`)
	if r.Method == http.MethodGet {
		w.Write(buf.Bytes())
	}
}
