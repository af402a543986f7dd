package caldav_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/emersion/go-ical"

	"imipd/caldav"
	"imipd/calstore"
	"imipd/itip/ics"
)

// TestCalDAVValuesStayOneValue (issue 13, attack 10): a stored attendee
// parameter that holds line breaks, a component boundary or a '"' (as an
// attendee's REPLY could plant it) is served by GET, calendar-query,
// calendar-multiget, sync-collection, the feed and export as that one
// value: the event stays one VEVENT with no DESCRIPTION or URL the
// organizer did not write, and no response is cut off.
func TestCalDAVValuesStayOneValue(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	cns := []string{
		"Carol\nDESCRIPTION:Room changed. Dial in at https://evil.example/\nURL:https://evil.example/",
		"Dave\nEND:VEVENT\nBEGIN:VEVENT\nUID:planted@evil.example\nSUMMARY:Planted",
		`Erin "the boss"`,
		"Frank\r\nX-INJECTED:1\u2028URL:https://evil.example/",
	}
	const uid = "hostile-1@remote.test"
	ev := &ical.Component{Name: ical.CompEvent, Props: ical.Props{}}
	for _, p := range [][2]string{{ical.PropUID, uid}, {ical.PropDateTimeStamp, "20261125T100000Z"},
		{ical.PropDateTimeStart, "20261205T090000Z"}, {ical.PropDateTimeEnd, "20261205T100000Z"}, {ical.PropSummary, "Review"}} {
		ev.Props.Set(&ical.Prop{Name: p[0], Value: p[1], Params: ical.Params{}})
	}
	ev.Props.Set(&ical.Prop{Name: ical.PropOrganizer, Value: "mailto:alice@remote.test", Params: ical.Params{}})
	ev.Props.Add(&ical.Prop{Name: ical.PropAttendee, Value: "mailto:bob@example.test", Params: ical.Params{"PARTSTAT": {"NEEDS-ACTION"}}})
	for i, cn := range cns {
		ev.Props.Add(&ical.Prop{Name: ical.PropAttendee, Value: "mailto:a" + string(rune('0'+i)) + "@remote.test",
			Params: ical.Params{ical.ParamCommonName: {cn}, "PARTSTAT": {"ACCEPTED"}}})
	}
	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, "-//t//EN")
	cal.Children = []*ical.Component{ev}
	if err := e.db.Write(context.Background(), func(tx calstore.Tx) error {
		return tx.PutEvent(davUser, calstore.Event{UID: uid, Data: ics.Marshal(cal)})
	}); err != nil {
		t.Fatal(err)
	}
	// check decodes one served calendar object and compares the attendees.
	check := func(how, body string) {
		t.Helper()
		for _, bad := range []string{"\nDESCRIPTION:", "\nURL:", "\nX-INJECTED", "\nUID:planted", "\nBEGIN:VEVENT\r\nUID:planted"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: served text has a line %q:\n%s", how, strings.TrimSpace(bad), body)
			}
		}
		got, err := ics.Decode([]byte(body), ics.Limits{})
		if err != nil {
			t.Fatalf("%s: %v\n%s", how, err, body)
		}
		var mine []*ical.Component
		for _, c := range got.Children {
			if c.Name == ical.CompEvent && c.Props.Get(ical.PropUID).Value == uid {
				mine = append(mine, c)
			}
		}
		if len(mine) != 1 {
			t.Fatalf("%s: %d VEVENTs for %s:\n%s", how, len(mine), uid, body)
		}
		for _, c := range mine[0].Children {
			if c.Name != ical.CompAlarm {
				t.Fatalf("%s: a %s inside the VEVENT:\n%s", how, c.Name, body)
			}
		}
		as := mine[0].Props[ical.PropAttendee]
		if len(as) != len(cns)+1 {
			t.Fatalf("%s: %d attendees", how, len(as))
		}
		for i, cn := range cns {
			want := strings.NewReplacer("\r\n", "\n", "\u2028", "\n").Replace(cn)
			if got := as[i+1].Params.Get(ical.ParamCommonName); got != want {
				t.Errorf("%s: CN %q, want %q", how, got, want)
			}
		}
	}
	const path = calPath + uid + ".ics"
	body, etag := e.fetch(t, path)
	check("GET", body)
	// A calendar app that sends the event back unchanged but for its own
	// answer is not refused for the escaped parameters (go-webdav decodes
	// PUT bodies with go-ical, which leaves RFC 6868 escapes as they are).
	accepted := strings.Replace(body, "PARTSTAT=NEEDS-ACTION:mailto:bob", "PARTSTAT=ACCEPTED:mailto:bob", 1)
	accepted = strings.Replace(accepted, "\r\nEND:VEVENT", "\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nDESCRIPTION;X-LABEL=Tom^nT ^^:Review\r\nEND:VALARM\r\nEND:VEVENT", 1)
	if accepted == body {
		t.Fatalf("test data: PARTSTAT not found in\n%s", body)
	}
	if resp, rb := e.do(t, "PUT", path, davUser, davPass, accepted, map[string]string{"Content-Type": "text/calendar", "If-Match": etag}); resp.StatusCode != 201 && resp.StatusCode != 204 {
		t.Fatalf("PUT of the served event with bob's answer: %d %s", resp.StatusCode, rb)
	}
	body, _ = e.fetch(t, path)
	check("GET after PUT", body)
	if !strings.Contains(body, "PARTSTAT=ACCEPTED:mailto:bob") {
		t.Errorf("bob's answer not stored:\n%s", body)
	}
	if got, _ := ics.Decode([]byte(body), ics.Limits{}); got == nil || len(got.Children[0].Children) != 1 ||
		got.Children[0].Children[0].Props.Get(ical.PropDescription).Params.Get("X-LABEL") != "Tom\nT ^" {
		t.Errorf("the alarm's parameter was not read as RFC 6868 says:\n%s", body)
	}

	type multistatus struct {
		Responses []struct {
			Href string `xml:"href"`
			Data string `xml:"propstat>prop>calendar-data"`
		} `xml:"response"`
	}
	report := func(how, req string, want int) {
		t.Helper()
		resp, body := e.do(t, "REPORT", calPath, davUser, davPass, req, map[string]string{"Depth": "1", "Content-Type": "application/xml"})
		if resp.StatusCode != 207 {
			t.Fatalf("%s: %d %s", how, resp.StatusCode, body)
		}
		var ms multistatus
		if err := xml.Unmarshal([]byte(body), &ms); err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		n := 0
		for _, r := range ms.Responses {
			if r.Data == "" {
				t.Errorf("%s: %s without calendar-data", how, r.Href)
			}
			if strings.HasSuffix(r.Href, uid+".ics") {
				check(how, r.Data)
				n++
			}
		}
		if len(ms.Responses) != want || n != 1 {
			t.Errorf("%s: %d responses (%d for %s), want %d", how, len(ms.Responses), n, uid, want)
		}
	}
	report("calendar-query", `<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/></C:comp-filter></C:filter></C:calendar-query>`, 4)
	report("calendar-multiget", `<?xml version="1.0"?><C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop><D:href>`+path+`</D:href></C:calendar-multiget>`, 1)
	report("sync-collection", `<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/><C:calendar-data/></D:prop></D:sync-collection>`, 4)

	var export bytes.Buffer
	if err := e.proc.Export(context.Background(), davUser, &export); err != nil {
		t.Fatal(err)
	}
	check("export", export.String())
}
