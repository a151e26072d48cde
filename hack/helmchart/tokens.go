package main

import (
	"fmt"
	"strings"
)

// tokens stand in objects for Helm template actions: an object holding tokens is
// marshalled as plain YAML, then each token is swapped for its action. Tokens are plain
// words, so the YAML writer never quotes them, and sort last among a map's keys.
type tokens struct {
	inline map[string]string           // replaced where they stand
	value  map[string]func(int) string // a map value: gets the key's column
	line   map[string]func(int) string // a whole line: gets the line's indentation
}

func newTokens() *tokens {
	return &tokens{inline: map[string]string{}, value: map[string]func(int) string{}, line: map[string]func(int) string{}}
}

func (t *tokens) next() string {
	return fmt.Sprintf("zzhelmtoken%03dx", len(t.inline)+len(t.value)+len(t.line))
}

// Inline stands for action inside a scalar.
func (t *tokens) Inline(action string) string {
	tok := t.next()
	t.inline[tok] = action
	return tok
}

// Value stands for a block value: action(col) follows "key:", col being the key's column.
func (t *tokens) Value(action func(col int) string) string {
	tok := t.next()
	t.value[tok] = action
	return tok
}

// Line stands for whole lines (a map key or a list item): action(indent) replaces the line.
func (t *tokens) Line(action func(indent int) string) string {
	tok := t.next()
	t.line[tok] = action
	return tok
}

// Expand swaps every token in text for its action.
func (t *tokens) Expand(text string) (string, error) {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		indent := len(l) - len(strings.TrimLeft(l, " "))
		for tok, action := range t.line {
			if strings.Contains(l, tok) {
				l = strings.Repeat(" ", indent) + action(indent)
			}
		}
		for tok, action := range t.value {
			if strings.Contains(l, tok) {
				col := indent
				if strings.HasPrefix(l[indent:], "- ") {
					col += 2
				}
				l = strings.Replace(l, " "+tok, " "+action(col), 1)
			}
		}
		for tok, action := range t.inline {
			l = strings.ReplaceAll(l, tok, action)
		}
		lines[i] = l
	}
	out := strings.Join(lines, "\n")
	if i := strings.Index(out, "zzhelmtoken"); i >= 0 {
		return "", fmt.Errorf("a token was left in the template near %q", out[i:min(len(out), i+40)])
	}
	return out, nil
}
