package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

var durationType = reflect.TypeOf(Duration{})

// decode parses data as JSON, expands ${VAR} in every string value, and assigns the result onto
// dst field by field, so that an unknown field or a wrong type is reported with its path.
func decode(data []byte, env LookupEnv, dst *Config) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return syntaxError(data, err)
	}
	if dec.More() {
		return &Error{Msg: "invalid JSON: more than one value in the file (remove what follows the closing })"}
	}
	if _, ok := tree.(map[string]any); !ok {
		return &Error{Msg: "invalid JSON: the config must be an object ({...})"}
	}
	return assign("", tree, reflect.ValueOf(dst).Elem(), env)
}

// syntaxError turns encoding/json's byte offset into line:column.
func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := int64(-1)
	switch {
	case errors.As(err, &se):
		off = se.Offset - 1 // the offset is just past the offending byte
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 {
		if errors.Is(err, errEOF) || strings.Contains(err.Error(), "EOF") {
			return &Error{Msg: "invalid JSON: unexpected end of file (a missing } or ])"}
		}
		return &Error{Msg: "invalid JSON: " + err.Error()}
	}
	line, col := 1, 1
	for _, c := range data[:min(int(off), len(data))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &Error{Msg: fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, strings.TrimPrefix(err.Error(), "json: "))}
}

var errEOF = errors.New("EOF")

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func assign(path string, v any, dst reflect.Value, env LookupEnv) error {
	if v == nil { // JSON null keeps the default
		return nil
	}
	if s, ok := v.(string); ok {
		if secretPaths[path] {
			// Never quote any part of a secret field's value. A reference is the whole value
			// (${NAME}, ${NAME:-default}); a literal ${ elsewhere would expand silently.
			if strings.Contains(s, "${") && !wholeReference.MatchString(s) {
				return fieldErr(path, "holds a literal with ${ in it (the value is not shown): write $$ for a literal $, or give the whole value as ${NAME}")
			}
			expanded, err := interpolate(s, env)
			var fe *fileRefError
			if errors.As(err, &fe) {
				return fieldErr(path, "%v", fe)
			}
			if err != nil {
				return fieldErr(path, "cannot be expanded (the value is not shown): write $$ for a literal $, or give the whole value as ${NAME}")
			}
			v = expanded
		} else {
			expanded, err := interpolate(s, env)
			if err != nil {
				return fieldErr(path, "%v", err)
			}
			v = expanded
		}
	}
	if dst.Type() == durationType {
		s, ok := v.(string)
		if !ok {
			return fieldErr(path, "must be a duration string such as \"10s\" or \"1m30s\", not %s", jsonKind(v))
		}
		if s == "" {
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fieldErr(path, "%q is not a duration (write e.g. \"10s\", \"500ms\", \"6h\")", s)
		}
		if d < 0 {
			return fieldErr(path, "%q is negative", s)
		}
		dst.Set(reflect.ValueOf(Duration{d}))
		return nil
	}
	switch dst.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return fieldErr(path, "must be an object ({...}), not %s", jsonKind(v))
		}
		fields := jsonFields(dst.Type())
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			i, ok := fields[k]
			if !ok {
				return fieldErr(join(path, k), "unknown field%s", suggest(k, fields))
			}
			if err := assign(join(path, k), obj[k], dst.Field(i), env); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return fieldErr(path, "must be a list ([...]), not %s", jsonKind(v))
		}
		out := reflect.MakeSlice(dst.Type(), len(arr), len(arr))
		for i, e := range arr {
			if err := assign(fmt.Sprintf("%s[%d]", path, i), e, out.Index(i), env); err != nil {
				return err
			}
		}
		dst.Set(out)
		return nil
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return fieldErr(path, "must be a string, not %s (put it in quotes)", jsonKind(v))
		}
		dst.SetString(s)
		return nil
	case reflect.Int:
		var text string
		switch x := v.(type) {
		case json.Number:
			text = x.String()
		case string: // "${PORT:-3306}" expands to a string
			text = strings.TrimSpace(x)
		default:
			return fieldErr(path, "must be a whole number, not %s", jsonKind(v))
		}
		n, err := strconv.Atoi(text)
		if err != nil {
			return fieldErr(path, "%q is not a whole number", text)
		}
		dst.SetInt(int64(n))
		return nil
	case reflect.Bool:
		switch x := v.(type) {
		case bool:
			dst.SetBool(x)
			return nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				return fieldErr(path, "%q is not true or false", x)
			}
			dst.SetBool(b)
			return nil
		}
		return fieldErr(path, "must be true or false, not %s", jsonKind(v))
	}
	return fieldErr(path, "unsupported field type %s", dst.Type())
}

// jsonFields maps a struct's JSON names to field indexes.
func jsonFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// suggest names the closest known field, for typos such as "sesionTTL".
func suggest(k string, fields map[string]int) string {
	best, bestD := "", 4
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		if d := editDistance(strings.ToLower(k), strings.ToLower(f)); d < bestD {
			best, bestD = f, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (known fields: " + strings.Join(names, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "null"
}

// secretPaths are the config fields that hold secrets: their values are never quoted.
var secretPaths = map[string]bool{
	"consul.token": true, "mysql.rootPassword": true, "mysql.password": true, "mysql.replPassword": true,
	"storage.s3.secretKey": true, "storage.manta.key": true, "snapshot.encrypt.key": true,
}

// wholeReference is a value that is one ${NAME} or ${NAME:-default} reference and nothing else.
var wholeReference = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$`)
