package admin

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// errSymlink refuses a Maildir's cur/ or new/, or a message file in it,
// that is a symbolic link: scan and catchup run as root, and a user who
// plants ~/Maildir/cur -> another user's cur/ would have that user's mail
// processed into their own calendar (SECURITY.md "Attacks").
var errSymlink = errors.New("a symbolic link: not followed")

// isSymlinkErr reports errSymlink, also when it came over the admin socket
// as text.
func isSymlinkErr(err error) bool {
	return err != nil && (errors.Is(err, errSymlink) || strings.HasSuffix(err.Error(), errSymlink.Error()))
}

// LocalClient is the Client of an imipctl that runs the command itself.
type LocalClient struct {
	Stdin io.Reader
	// Status, when not nil, receives progress lines (imipctl passes its
	// standard error when that is a terminal).
	Status io.Writer
}

// ReadFile reads path, or standard input for "-".
func (c LocalClient) ReadFile(path string) ([]byte, error) {
	if path == "-" {
		if c.Stdin == nil {
			return nil, fmt.Errorf("no standard input")
		}
		return io.ReadAll(c.Stdin)
	}
	return os.ReadFile(path)
}

// ReadMessage reads a message file ReadDir listed, through neither a
// symbolic link of its own nor one that replaced its directory since.
func (c LocalClient) ReadMessage(path string) ([]byte, error) {
	dir, err := openNoFollow(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	// The root is opened by name again: it must be the directory just
	// checked, not a link put in its place.
	root, err := os.OpenRoot(dir.Name())
	if err != nil {
		return nil, err
	}
	defer root.Close()
	di, err := dir.Stat()
	if err != nil {
		return nil, err
	}
	if ri, err := root.Stat("."); err != nil || !os.SameFile(ri, di) {
		return nil, fmt.Errorf("%s: %w", dir.Name(), errSymlink)
	}
	name := filepath.Base(path)
	li, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if li.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s: %w", path, errSymlink)
	}
	if !li.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !os.SameFile(fi, li) {
		return nil, fmt.Errorf("%s: %w", path, errSymlink)
	}
	return io.ReadAll(f)
}

// openNoFollow opens a directory that is not a symbolic link: what it
// opened is the very directory Lstat saw, so a link swapped in between is
// caught too.
func openNoFollow(dir string) (*os.File, error) {
	li, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if li.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s: %w", dir, errSymlink)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !os.SameFile(fi, li) {
		err = fmt.Errorf("%s: %w", dir, errSymlink)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadDir lists the regular files of a directory, and its symbolic links
// (Symlink set, never followed). A directory that is itself a symbolic
// link is refused with errSymlink.
func (c LocalClient) ReadDir(path string) ([]FileInfo, error) {
	d, err := openNoFollow(path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var out []FileInfo
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink != 0 {
			out = append(out, FileInfo{Name: filepath.Base(e.Name()), Symlink: true})
			continue
		}
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile (a Maildir changes while we read it)
		}
		out = append(out, FileInfo{Name: filepath.Base(e.Name()), ModTime: fi.ModTime(), Size: fi.Size()})
	}
	return out, nil
}

// Progress rewrites the status line.
func (c LocalClient) Progress(format string, a ...any) {
	if c.Status != nil {
		fmt.Fprintf(c.Status, "\r\033[K"+format, a...)
	}
}
