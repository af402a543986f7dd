package filter

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"imipd/itip/imip"
)

// Analysis is what imipctl check shows about a message besides the outcomes.
type Analysis struct {
	MessageID, From, Sender string
	Objects                 []string // one line per calendar part: method, UID, versions, or why it was refused
}

// Check is a dry run (SPEC: imipctl check): it describes the message and
// decides for each local recipient (To and Cc at local domains, or
// env.ForcedUser) without changing anything.
func (p *Processor) Check(ctx context.Context, raw io.Reader, env Envelope) (*Analysis, *Report, error) {
	data, err := io.ReadAll(raw)
	if err != nil {
		return nil, nil, err
	}
	msg, perr := imip.Parse(bytes.NewReader(data), p.Cfg.MIME)
	a := &Analysis{}
	if msg != nil {
		a.MessageID, a.From, a.Sender = msg.MessageID, msg.From, msg.Sender
		if env.ForcedUser == "" {
			env.Rcpts = append(append([]string{}, msg.To...), msg.Cc...)
		}
		if perr == nil {
			for _, o := range p.decodeParts(msg, p.logger()) {
				if o.msg == nil {
					a.Objects = append(a.Objects, fmt.Sprintf("refused: %s (%v)", o.reason, o.err))
					continue
				}
				m := o.msg
				line := fmt.Sprintf("%s %s uid=%s sequence=%d dtstamp=%s components=%d", m.Method, m.Kind, m.UID, m.Sequence(), m.DTStamp().UTC().Format("2006-01-02T15:04:05Z"), len(m.Instances))
				if o.methodParam != "" && o.methodParam != string(m.Method) {
					line += " (Content-Type says method=" + o.methodParam + ": suspicious)"
				}
				a.Objects = append(a.Objects, line)
			}
		}
	}
	env.DryRun = true
	rep, err := p.Process(ctx, bytes.NewReader(data), env)
	return a, rep, err
}
