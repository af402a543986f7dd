package admin

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// What a command may read on imipctl's side. On the admin socket the daemon
// asks imipctl for files ({"read":PATH}, {"list":DIR}); imipctl answers only
// what its own command line named for this command, so whoever answers on
// the socket (any process that owns the data directory) cannot make an
// administrator's imipctl send it /etc/shadow during `imipctl users`.

// readKind is how a command reads imipctl's side.
type readKind int

const (
	readFile    readKind = iota + 1 // the named file ("-": standard input)
	readStdin                       // standard input only
	readMaildir                     // the named directory, its cur/ and new/, and the files listed there
	// readMaildirs: every directory the -maildirs template of catchup
	// names (any user: %u, %n and %d are any one path segment), their
	// cur/ and new/, and the files listed there. The daemon picks the
	// users; it can list and read only Maildirs, the mail it processes
	// anyway.
	readMaildirs
)

// fileCommand names a command that reads imipctl's side and which of its
// arguments say what.
type fileCommand struct {
	words      []string // the command words: "import", "contacts import"
	valueFlags []string // the command's flags that take a value (the others are booleans)
	pos        int      // the positional argument, after the flags, that names the file or directory
	kind       readKind
}

// fileCommands is every command that reads a file, a directory or standard
// input through its Client (TestAccessCoversCommands runs each command and
// fails when one reads what its entry does not grant).
var fileCommands = []fileCommand{
	{words: []string{"user", "password"}, kind: readStdin},
	{words: []string{"contacts", "import"}, pos: 1, kind: readFile},
	{words: []string{"import"}, pos: 1, kind: readFile},
	{words: []string{"check"}, valueFlags: []string{"user"}, pos: 0, kind: readFile},
	{words: []string{"process"}, valueFlags: []string{"user"}, pos: 0, kind: readFile},
	{words: []string{"scan"}, valueFlags: []string{"user", "timeframe"}, pos: 0, kind: readMaildir},
	{words: []string{"catchup"}, valueFlags: []string{"maildirs"}, kind: readMaildirs},
}

// access is what one invocation of imipctl may read: computed from its own
// arguments, never from what the daemon asks.
type access struct {
	file  string          // the one file (readFile); "" none
	stdin bool            // standard input
	dirs  map[string]bool // directories it may list (readMaildir)
	// maildirs matches the directories catchup may list (readMaildirs);
	// nil none.
	maildirs *regexp.Regexp
	listed   map[string]bool // files it listed itself in those directories
}

// accessFor returns what the command in args may read.
func accessFor(args []string) *access {
	a := &access{dirs: map[string]bool{}, listed: map[string]bool{}}
	for _, fc := range fileCommands {
		if len(args) < len(fc.words) || !equalWords(args[:len(fc.words)], fc.words) {
			continue
		}
		if fc.kind == readStdin {
			a.stdin = true
			return a
		}
		if fc.kind == readMaildirs {
			if re, err := maildirPattern(flagValue(args[len(fc.words):], "maildirs")); err == nil {
				a.maildirs = re
			}
			return a
		}
		pos := positional(args[len(fc.words):], fc.valueFlags)
		if fc.pos >= len(pos) {
			return a
		}
		name := pos[fc.pos]
		switch fc.kind {
		case readFile:
			if name == "-" {
				a.stdin = true
			} else {
				a.file = name
			}
		case readMaildir:
			for _, d := range []string{name, path.Join(name, "cur"), path.Join(name, "new")} {
				a.dirs[d] = true
			}
		}
		return a
	}
	return a
}

func equalWords(a, b []string) bool {
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// positional returns the arguments that are not flags, as parse reads
// them: flags may come before, between or after the arguments; "-" is an
// argument; everything after "--" is; a flag in valueFlags without "="
// takes the next argument.
func positional(args []string, valueFlags []string) []string {
	var pos []string
	for i := 0; i < len(args); i++ {
		s := args[i]
		if len(s) < 2 || s[0] != '-' {
			pos = append(pos, s)
			continue
		}
		if s == "--" {
			return append(pos, args[i+1:]...)
		}
		name := strings.TrimLeft(s, "-")
		if strings.Contains(name, "=") {
			continue
		}
		for _, v := range valueFlags {
			if name == v {
				i++ // its value
				break
			}
		}
	}
	return pos
}

// flagValue is the value of flag name among a command's arguments, as Go's
// flag package reads it ("-name V", "--name V", "-name=V"); "" when absent.
func flagValue(args []string, name string) string {
	for i, s := range args {
		if s == "--" || len(s) < 2 || s[0] != '-' {
			return ""
		}
		n, v, hasV := strings.Cut(strings.TrimLeft(s, "-"), "=")
		if n != name {
			continue
		}
		if hasV {
			return v
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// errNotNamed refuses a request for something the command line did not name.
func errNotNamed(what, p string) error {
	return fmt.Errorf("imipctl: refused to %s %q: this command did not name it", what, p)
}

// guardedClient answers the daemon's requests with a Client, within an access.
type guardedClient struct {
	Client
	a *access
}

func (g guardedClient) ReadFile(p string) ([]byte, error) {
	switch {
	case p == "-" && g.a.stdin,
		p != "-" && p == g.a.file:
		return g.Client.ReadFile(p)
	case g.a.listed[p]:
		return g.Client.ReadMessage(p)
	}
	return nil, errNotNamed("read", p)
}

// ReadMessage reads only a file listed before.
func (g guardedClient) ReadMessage(p string) ([]byte, error) {
	if !g.a.listed[p] {
		return nil, errNotNamed("read", p)
	}
	return g.Client.ReadMessage(p)
}

func (g guardedClient) ReadDir(p string) ([]FileInfo, error) {
	if !g.a.dirs[p] && (g.a.maildirs == nil || path.Clean(p) != p || !g.a.maildirs.MatchString(p)) {
		return nil, errNotNamed("list", p)
	}
	files, err := g.Client.ReadDir(p)
	for _, f := range files {
		if !f.Symlink && f.Name != "" && !strings.ContainsAny(f.Name, "/\\") && f.Name != "." && f.Name != ".." {
			g.a.listed[path.Join(p, f.Name)] = true
		}
	}
	return files, err
}
