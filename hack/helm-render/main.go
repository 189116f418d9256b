// helm-render renders a Helm chart the way `helm template` does, for machines without a helm binary.
//
// It implements only what charts/vpcep-operator uses: Go text/template with sprig (minus env/expandenv,
// as Helm removes them), Helm's include, tpl, required, toYaml, fromYaml, toJson, fromJson and lookup
// (always empty, as in `helm template`), .Files.Get/.Files.Glob, values.yaml merged with -f files and
// --set/--set-string, and validation of the merged values against values.schema.json (draft-07).
//
// Usage: helm-render [--namespace NS] [-f values.yaml]... [--set k=v]... [--set-string k=v]... \
//
//	[--show-notes] RELEASE CHART_DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"github.com/ghodss/yaml"
	"github.com/xeipuuv/gojsonschema"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// Files mirrors Helm's .Files: every chart file outside templates/ keyed by its slash path.
type Files map[string][]byte

func (f Files) Get(name string) string { return string(f[name]) }

func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("helm-render", flag.ContinueOnError)
	namespace := fs.String("namespace", "default", "release namespace")
	fs.StringVar(namespace, "n", "default", "release namespace (shorthand)")
	showNotes := fs.Bool("show-notes", false, "also print the rendered NOTES.txt to stderr")
	var valueFiles, sets, setStrings multiFlag
	fs.Var(&valueFiles, "f", "values file (repeatable)")
	fs.Var(&valueFiles, "values", "values file (repeatable)")
	fs.Var(&sets, "set", "key=value[,key=value] (repeatable)")
	fs.Var(&setStrings, "set-string", "key=value forced to a string (repeatable)")
	if err := fs.Parse(reorderArgs(args)); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("usage: helm-render [flags] RELEASE CHART_DIR")
	}
	release, chartDir := fs.Arg(0), fs.Arg(1)

	chartMeta := map[string]interface{}{}
	if err := readYAML(filepath.Join(chartDir, "Chart.yaml"), &chartMeta); err != nil {
		return err
	}
	values := map[string]interface{}{}
	if err := readYAML(filepath.Join(chartDir, "values.yaml"), &values); err != nil {
		return err
	}
	for _, file := range valueFiles {
		override := map[string]interface{}{}
		if err := readYAML(file, &override); err != nil {
			return err
		}
		values = mergeValues(values, override)
	}
	for _, s := range sets {
		if err := applySet(values, s, false); err != nil {
			return fmt.Errorf("--set %q: %w", s, err)
		}
	}
	for _, s := range setStrings {
		if err := applySet(values, s, true); err != nil {
			return fmt.Errorf("--set-string %q: %w", s, err)
		}
	}
	values = dropNulls(values).(map[string]interface{})
	if err := validateSchema(chartDir, chartMeta, values); err != nil {
		return err
	}

	files, templates, err := loadChart(chartDir)
	if err != nil {
		return err
	}
	top := map[string]interface{}{
		"Values": values,
		"Chart":  chartObject(chartMeta),
		"Release": map[string]interface{}{
			"Name": release, "Namespace": *namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{"Version": "v1.30.0", "Major": "1", "Minor": "30"},
		},
		"Files": files,
	}
	return render(chartMeta["name"].(string), templates, top, *showNotes)
}

// reorderArgs lets flags follow the positional arguments, as helm allows.
func reorderArgs(args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			takesValue := !strings.Contains(a, "=") && a != "--show-notes" && a != "-show-notes"
			if takesValue && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		} else {
			positional = append(positional, a)
		}
	}
	return append(flags, positional...)
}

func readYAML(file string, out *map[string]interface{}) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if *out == nil {
		*out = map[string]interface{}{}
	}
	return nil
}

func chartObject(meta map[string]interface{}) map[string]interface{} {
	get := func(k string) interface{} { return meta[k] }
	return map[string]interface{}{
		"Name": get("name"), "Version": get("version"), "AppVersion": get("appVersion"),
		"Description": get("description"), "Type": get("type"),
	}
}

// mergeValues deep-merges override into base; maps merge, anything else replaces (Helm's coalescing).
func mergeValues(base, override map[string]interface{}) map[string]interface{} {
	for k, v := range override {
		if vm, ok := v.(map[string]interface{}); ok {
			if bm, ok := base[k].(map[string]interface{}); ok {
				base[k] = mergeValues(bm, vm)
				continue
			}
		}
		base[k] = v
	}
	return base
}

// dropNulls removes keys set to null, which is how a user deletes a default in Helm.
func dropNulls(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, x := range t {
			if x == nil {
				delete(t, k)
			} else {
				t[k] = dropNulls(x)
			}
		}
	case []interface{}:
		for i, x := range t {
			t[i] = dropNulls(x)
		}
	}
	return v
}

// applySet handles a.b.c=v and a.list[0].x=v, comma-separated (escape a comma or dot with a backslash).
func applySet(values map[string]interface{}, expr string, asString bool) error {
	for _, assignment := range splitUnescaped(expr, ',') {
		eq := strings.Index(assignment, "=")
		if eq < 0 {
			return fmt.Errorf("%q has no '='", assignment)
		}
		key, raw := assignment[:eq], strings.ReplaceAll(assignment[eq+1:], `\,`, ",")
		var value interface{} = raw
		if !asString {
			value = typedValue(raw)
		}
		if err := setPath(values, splitUnescaped(key, '.'), value); err != nil {
			return err
		}
	}
	return nil
}

func splitUnescaped(s string, sep byte) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == sep {
			cur.WriteByte(sep)
			i++
			continue
		}
		if s[i] == sep {
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	return append(parts, cur.String())
}

func typedValue(raw string) interface{} {
	switch raw {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil && (raw == "0" || !strings.HasPrefix(raw, "0")) {
		return n
	}
	return raw
}

func setPath(node map[string]interface{}, keys []string, value interface{}) error {
	key := keys[0]
	index := -1
	if open := strings.Index(key, "["); open >= 0 && strings.HasSuffix(key, "]") {
		n, err := strconv.Atoi(key[open+1 : len(key)-1])
		if err != nil || n < 0 {
			return fmt.Errorf("bad list index in %q", key)
		}
		key, index = key[:open], n
	}
	if index < 0 {
		if len(keys) == 1 {
			node[key] = value
			return nil
		}
		child, ok := node[key].(map[string]interface{})
		if !ok {
			child = map[string]interface{}{}
			node[key] = child
		}
		return setPath(child, keys[1:], value)
	}
	list, _ := node[key].([]interface{})
	for len(list) <= index {
		list = append(list, nil)
	}
	if len(keys) == 1 {
		list[index] = value
	} else {
		child, ok := list[index].(map[string]interface{})
		if !ok {
			child = map[string]interface{}{}
			list[index] = child
		}
		if err := setPath(child, keys[1:], value); err != nil {
			return err
		}
	}
	node[key] = list
	return nil
}

func validateSchema(chartDir string, meta map[string]interface{}, values map[string]interface{}) error {
	schema, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	doc, err := json.Marshal(values)
	if err != nil {
		return err
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(doc))
	if err != nil {
		return fmt.Errorf("values.schema.json: %w", err)
	}
	if result.Valid() {
		return nil
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "values don't meet the specifications of the schema(s) in the following chart(s):\n%v:\n", meta["name"])
	for _, e := range result.Errors() {
		fmt.Fprintf(&msg, "- %s: %s\n", e.Field(), e.Description())
	}
	return errors.New(strings.TrimSuffix(msg.String(), "\n"))
}

// loadChart reads templates/ and every other file (for .Files), following symlinks like Helm's loader.
func loadChart(chartDir string) (Files, map[string]string, error) {
	files := Files{}
	templates := map[string]string{}
	err := walkFollowingLinks(chartDir, "", func(rel string, data []byte) {
		switch {
		case strings.HasPrefix(rel, "templates/"):
			templates[rel] = string(data)
		case rel == "Chart.yaml" || rel == "values.yaml" || rel == "values.schema.json" || rel == ".helmignore":
		default:
			files[rel] = data
		}
	})
	return files, templates, err
}

func walkFollowingLinks(root, rel string, visit func(string, []byte)) error {
	entries, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return err
	}
	for _, e := range entries {
		childRel := path.Join(rel, e.Name())
		info, err := os.Stat(filepath.Join(root, childRel))
		if err != nil {
			return err
		}
		if info.IsDir() {
			if err := walkFollowingLinks(root, childRel, visit); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, childRel))
		if err != nil {
			return err
		}
		visit(childRel, data)
	}
	return nil
}

func funcMap(root *template.Template) template.FuncMap {
	fm := sprig.TxtFuncMap()
	delete(fm, "env")
	delete(fm, "expandenv")
	includedDepth := 0
	fm["include"] = func(name string, data interface{}) (string, error) {
		includedDepth++
		defer func() { includedDepth-- }()
		if includedDepth > 1000 {
			return "", fmt.Errorf("include %q: recursion too deep", name)
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	fm["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	fm["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	fm["toYaml"] = func(v interface{}) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	fm["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	fm["toJson"] = func(v interface{}) string {
		data, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(data)
	}
	fm["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	fm["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return fm
}

func render(chartName string, templates map[string]string, top map[string]interface{}, showNotes bool) error {
	root := template.New("chart").Option("missingkey=zero")
	root.Funcs(funcMap(root))
	names := make([]string, 0, len(templates))
	for name := range templates {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		full := chartName + "/" + name
		if _, err := root.New(full).Parse(templates[name]); err != nil {
			return err
		}
	}
	var out bytes.Buffer
	for _, name := range names {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") {
			continue
		}
		full := chartName + "/" + name
		scope := copyTop(top, full)
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, full, scope); err != nil {
			return err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			if showNotes {
				fmt.Fprintln(os.Stderr, text)
			}
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", full, strings.TrimRight(text, "\n"))
	}
	_, err := os.Stdout.Write(out.Bytes())
	return err
}

func copyTop(top map[string]interface{}, templateName string) map[string]interface{} {
	scope := make(map[string]interface{}, len(top)+1)
	for k, v := range top {
		scope[k] = v
	}
	scope["Template"] = map[string]interface{}{
		"Name": templateName, "BasePath": path.Dir(templateName),
	}
	return scope
}
