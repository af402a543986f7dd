package admin

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

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

// ReadDir lists the regular files of a directory.
func (c LocalClient) ReadDir(path string) ([]FileInfo, error) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []FileInfo
	for _, e := range entries {
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
