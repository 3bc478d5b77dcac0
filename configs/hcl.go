package configs

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/hashicorp/hcl/hcl/ast"
	hclparser "github.com/hashicorp/hcl/hcl/parser"
	"github.com/hashicorp/hcl/hcl/token"
)

// HCL is Consul's primary config format. hashicorp/hcl (v1, the version
// Consul reads its files with) parses it; the syntax tree is turned into the
// same raw map the YAML and JSON codecs produce, so one decoder checks every
// format. HCL has no lists of blocks: a block repeated (`service { }` twice)
// is a list where the schema has a list, and its blocks merge where the
// schema has one mapping (`ports { }`), as in Consul.

// hclDoc is one parsed HCL file: its raw values, and the line each key path
// (folded by normKey) starts on, for error messages.
type hclDoc struct {
	raw   map[string]any
	lines map[string]int
	errs  []error
}

// decodeHCL parses data. An error is one line with the line number.
func decodeHCL(data []byte) (doc *hclDoc, err error) {
	defer func() {
		// The parser reads untrusted input; a bug in it must not take the
		// agent down with a stack trace instead of naming the file.
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("cannot parse HCL: %v", r)
		}
	}()
	if n, ok := danglingAssign(data); ok {
		// hcl v1 drops a last `key =` with no value without a word.
		return nil, fmt.Errorf("line %d: invalid HCL: no value after '='", n)
	}
	f, err := hclparser.Parse(data)
	if err != nil {
		var pe *hclparser.PosError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("line %d: invalid HCL: %v", pe.Pos.Line, pe.Err)
		}
		return nil, fmt.Errorf("invalid HCL: %v", err)
	}
	doc = &hclDoc{lines: make(map[string]int)}
	list, ok := f.Node.(*ast.ObjectList)
	if !ok {
		return nil, fmt.Errorf("invalid HCL: the file is not a list of keys")
	}
	doc.raw = doc.objectList("", reflect.TypeFor[Config](), list)
	if len(doc.errs) > 0 {
		return nil, errors.Join(doc.errs...)
	}
	return doc, nil
}

// line is the line key (a path as the decoder spells it) starts on, or 0.
func (d *hclDoc) line(key string) int { return d.lines[normKey(key)] }

func (d *hclDoc) mark(path string, pos token.Pos) {
	if _, seen := d.lines[normKey(path)]; !seen {
		d.lines[normKey(path)] = pos.Line
	}
}

// objectList turns the items of one block into a mapping. t is the schema
// type the block is read as (a struct, a map, or nil where the schema does
// not know the key, which the decoder reports).
func (d *hclDoc) objectList(path string, t reflect.Type, list *ast.ObjectList) map[string]any {
	out := make(map[string]any)
	var order []string
	groups := make(map[string][]*ast.ObjectItem)
	for _, item := range list.Items {
		if len(item.Keys) == 0 {
			continue
		}
		k := keyText(item.Keys[0])
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], item)
	}
	for _, k := range order {
		items := groups[k]
		p := joinKey(path, k)
		d.mark(p, items[0].Pos())
		sub, isList := schemaOf(t, k)
		if isList {
			var elems []any
			for _, item := range items {
				// A list value (`services = [{...}]`) adds its elements; a
				// block adds itself.
				if l, ok := item.Val.(*ast.ListType); ok && len(item.Keys) == 1 {
					for _, e := range l.List {
						ep := fmt.Sprintf("%s[%d]", p, len(elems))
						d.mark(ep, e.Pos())
						elems = append(elems, d.node(ep, sub, e))
					}
					continue
				}
				ep := fmt.Sprintf("%s[%d]", p, len(elems))
				d.mark(ep, item.Pos())
				elems = append(elems, d.itemValue(ep, sub, item))
			}
			out[k] = elems
			continue
		}
		if len(items) == 1 {
			out[k] = d.itemValue(p, sub, items[0])
			continue
		}
		// Repeated blocks of one mapping merge; a repeated value is a mistake.
		merged := make(map[string]any)
		for i, item := range items {
			m, ok := d.itemValue(p, sub, item).(map[string]any)
			if !ok {
				d.errs = append(d.errs, fmt.Errorf("line %d: %s: set twice (first on line %d)", items[max(i, 1)].Pos().Line, p, items[0].Pos().Line))
				break
			}
			for mk, mv := range m {
				merged[mk] = mv
			}
		}
		out[k] = merged
	}
	return out
}

// itemValue converts one item. `a b { }` (more than one key) is `a { b { } }`.
func (d *hclDoc) itemValue(path string, t reflect.Type, item *ast.ObjectItem) any {
	if len(item.Keys) > 1 {
		rest := &ast.ObjectItem{Keys: item.Keys[1:], Assign: item.Assign, Val: item.Val}
		return d.objectList(path, t, &ast.ObjectList{Items: []*ast.ObjectItem{rest}})
	}
	return d.node(path, t, item.Val)
}

// node converts a value: a literal to its Go value, a list to []any, a
// block to a mapping.
func (d *hclDoc) node(path string, t reflect.Type, n ast.Node) any {
	switch n := n.(type) {
	case *ast.LiteralType:
		return n.Token.Value()
	case *ast.ListType:
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		out := make([]any, 0, len(n.List))
		for i, e := range n.List {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.mark(p, e.Pos())
			out = append(out, d.node(p, elem, e))
		}
		return out
	case *ast.ObjectType:
		return d.objectList(path, t, n.List)
	}
	return nil
}

// schemaOf is the type of key k inside type t, and whether the schema holds
// a list of blocks there (repeated blocks then append rather than merge).
func schemaOf(t reflect.Type, k string) (reflect.Type, bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return nil, false
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem(), false
	case reflect.Struct:
		if t == durationType {
			return nil, false
		}
		f, single, found := matchField(fieldsOf(t), k)
		if !found {
			return nil, false
		}
		if single {
			return f.typ.Elem(), true
		}
		if f.typ.Kind() == reflect.Slice && f.typ.Elem().Kind() == reflect.Struct {
			return f.typ.Elem(), true
		}
		return f.typ, false
	}
	return nil, false
}

func keyText(k *ast.ObjectKey) string {
	if s, ok := k.Token.Value().(string); ok {
		return s
	}
	return strings.Trim(k.Token.Text, `"`)
}

// danglingAssign reports whether data ends in `=` outside a comment, and
// on which line.
func danglingAssign(data []byte) (int, bool) {
	text := strings.TrimRight(string(data), " \t\r\n")
	if !strings.HasSuffix(text, "=") {
		return 0, false
	}
	last := strings.TrimSpace(text[strings.LastIndex(text, "\n")+1:])
	if strings.HasPrefix(last, "#") || strings.HasPrefix(last, "//") {
		return 0, false
	}
	return 1 + strings.Count(text, "\n"), true
}
