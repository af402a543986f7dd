package config

import (
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// decodeKeys decodes a parsed TOML file into f key by key, so one value of
// the wrong type (timeframe = 4) is one problem naming its key and the
// type it wants, and every other key is still read and checked. Unknown
// keys are problems too. The problems never show a value.
func decodeKeys(md toml.MetaData, top map[string]toml.Primitive, f *File) []string {
	var problems []string
	root := reflect.ValueOf(f).Elem()
	for _, k := range sortedKeys(top) {
		fv, ok := fieldByKey(root, k)
		if !ok {
			problems = append(problems, fmt.Sprintf("unknown key %q", k))
			continue
		}
		if fv.Kind() != reflect.Struct {
			problems = append(problems, decodeKey(md, top[k], fv, k)...)
			continue
		}
		var table map[string]toml.Primitive
		if err := md.PrimitiveDecode(top[k], &table); err != nil {
			problems = append(problems, fmt.Sprintf("%s: wrong type: want a table ([%s]), the file has %s", k, k, tomlType(md, k)))
			continue
		}
		for _, sk := range sortedKeys(table) {
			sfv, ok := fieldByKey(fv, sk)
			if !ok {
				problems = append(problems, fmt.Sprintf("unknown key %q", k+"."+sk))
				continue
			}
			problems = append(problems, decodeKey(md, table[sk], sfv, k, sk)...)
		}
	}
	return problems
}

// decodeKey decodes one value into its field; on a type error the field
// keeps its default.
func decodeKey(md toml.MetaData, p toml.Primitive, fv reflect.Value, key ...string) []string {
	old := reflect.New(fv.Type()).Elem()
	old.Set(fv)
	if err := md.PrimitiveDecode(p, fv.Addr().Interface()); err != nil {
		fv.Set(old)
		return []string{fmt.Sprintf("%s: wrong type: want %s, the file has %s", strings.Join(key, "."), wantType(fv.Type()), tomlType(md, key...))}
	}
	return nil
}

func sortedKeys(m map[string]toml.Primitive) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fieldByKey finds the field a TOML key decodes into, as the toml package
// does: by tag, through embedded structs, then ignoring case.
func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	for _, fold := range []bool{false, true} {
		if f, ok := findField(v, key, fold); ok {
			return f, true
		}
	}
	return reflect.Value{}, false
}

func findField(v reflect.Value, key string, fold bool) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			if f, ok := findField(v.Field(i), key, fold); ok {
				return f, true
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		if name == key || fold && strings.EqualFold(name, key) {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// wantType says in TOML's words what a field takes.
func wantType(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string in quotes"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Slice:
		return "a list of " + plural(t.Elem())
	case reflect.Map:
		return "a table of " + plural(t.Elem())
	case reflect.Struct:
		return "a table"
	}
	return t.String()
}

// plural names the values of a list or table.
func plural(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "strings"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "whole numbers"
	case reflect.Bool:
		return "booleans"
	}
	return "values"
}

// tomlType names the type of the value at key in the file.
func tomlType(md toml.MetaData, key ...string) string {
	switch md.Type(key...) {
	case "String":
		return "a string"
	case "Integer":
		return "a whole number"
	case "Float":
		return "a decimal number"
	case "Bool":
		return "a boolean"
	case "Array":
		return "a list"
	case "Hash":
		return "a table"
	case "":
		return "another type"
	}
	return "a date or time"
}

// hostName is a DNS host name (RFC 1123 labels).
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

// maxUnixPath is the longest path a unix socket address holds (sun_path
// less its terminating NUL).
const maxUnixPath = 107

// checkHostPort checks HOST:PORT: an IP address, a host name or empty (all
// addresses), and a port from 0 (any free port) to 65535.
func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("want HOST:PORT ([IPv6]:PORT for an IPv6 address)")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want a number from 1 to 65535", port)
	}
	h, _, _ := strings.Cut(host, "%") // an IPv6 zone
	if host != "" && net.ParseIP(h) == nil && !hostName.MatchString(host) {
		return fmt.Errorf("host %q: want an IP address or a host name", host)
	}
	return nil
}

// checkAddress checks an "inet:HOST:PORT" or "unix:/PATH" address.
func checkAddress(addr string) error {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		switch {
		case !filepath.IsAbs(p):
			return fmt.Errorf("want unix:/PATH with an absolute path")
		case len(p) > maxUnixPath:
			return fmt.Errorf("socket path longer than %d bytes", maxUnixPath)
		case strings.ContainsRune(p, 0):
			return fmt.Errorf("NUL in the socket path")
		}
		return nil
	}
	hp, ok := strings.CutPrefix(addr, "inet:")
	if !ok {
		return fmt.Errorf("want inet:HOST:PORT or unix:/PATH")
	}
	return checkHostPort(hp)
}
