package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{``, map[string]string{}, ""},
		{`{}`, map[string]string{}, ""},
		{` {"a":"1", "b":"$(id)\n"} `, map[string]string{"a": "1", "b": "$(id)\n"}, ""},
		{`{"a":"\u0000"}`, map[string]string{"a": "\x00"}, ""}, // refused later, by ValidateParams
		{`null`, nil, "not null"},
		{`"x"`, nil, "not a string"},
		{`[]`, nil, "not an array"},
		{`3`, nil, "not a number"},
		{`{"a":true}`, nil, `"a" is a boolean`},
		{`{"a":2}`, nil, `"a" is a number`},
		{`{"a":["x"]}`, nil, `"a" is an array`},
		{`{"a":"1","a":"2"}`, nil, `"a" given twice`},
		{`{"a":"1"} x`, nil, "args: "},
		{`{"a":"1"}{}`, nil, "data after"},
		{`{"a"}`, nil, "args: "},
		{`{`, nil, "args: "},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseArgs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParamEnv(t *testing.T) {
	got := paramEnv(map[string]string{"b_2": "x y", "a": "$(id)"})
	want := []string{"PATCHBAY_PARAM_A=$(id)", "PATCHBAY_PARAM_B_2=x y"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestLineTracker(t *testing.T) {
	tests := []struct {
		name     string
		writes   []string
		tail     []string
		lastLine string
		lastText string
		reboot   bool
	}{
		{"empty", nil, nil, "", "", false},
		{"split writes", []string{"he", "llo\nwor", "ld\r\n"}, []string{"hello", "world"}, "world", "world", false},
		{"unterminated", []string{"a\nb"}, []string{"a", "b"}, "b", "b", false},
		{"blank lines skipped", []string{"a\n\n  \n"}, []string{"a"}, "a", "a", false},
		{"markers", []string{"done\npatchbay:reboot-required\npatchbay:unchanged\n"},
			[]string{"done", "patchbay:reboot-required", "patchbay:unchanged"}, "patchbay:unchanged", "done", true},
		{"tail bounded", []string{strings.Repeat("x\n", 5) + "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"},
			[]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}, "10", "10", false},
		{"long line cut", []string{strings.Repeat("y", 2000) + "\n"}, []string{strings.Repeat("y", maxTrackedLine)},
			strings.Repeat("y", maxTrackedLine), strings.Repeat("y", maxTrackedLine), false},
		{"invalid utf8", []string{"a\xffb\n"}, []string{"a\uFFFDb"}, "a\uFFFDb", "a\uFFFDb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lt lineTracker
			for _, w := range tt.writes {
				lt.track([]byte(w))
			}
			lt.finish()
			if !reflect.DeepEqual(lt.tail, tt.tail) || lt.lastLine != tt.lastLine || lt.lastText != tt.lastText || lt.reboot != tt.reboot {
				t.Fatalf("got tail %q last %q text %q reboot %v", lt.tail, lt.lastLine, lt.lastText, lt.reboot)
			}
		})
	}
}

func TestCaptureCap(t *testing.T) {
	var sink strings.Builder
	c := &capture{max: 10, sink: &sink, over: make(chan struct{})}
	for _, w := range []string{"12345\n", "67890\n", "more\n"} {
		if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	select {
	case <-c.over:
	default:
		t.Fatal("over not closed")
	}
	lines, exceeded := c.detach()
	if sink.String() != "12345\n6789" || !exceeded || lines.lastLine != "6789" {
		t.Fatalf("sink %q exceeded %v last %q", sink.String(), exceeded, lines.lastLine)
	}
	if _, err := c.Write([]byte("after")); err != nil || sink.String() != "12345\n6789" {
		t.Fatalf("write after detach reached the sink: %q", sink.String())
	}
}

func TestHeadBuffer(t *testing.T) {
	h := &headBuffer{max: 5}
	for _, w := range []string{"abc", "defg", "h"} {
		if n, _ := h.Write([]byte(w)); n != len(w) {
			t.Fatalf("Write(%q) = %d", w, n)
		}
	}
	if got := h.String(); got != "abcde\n…[output truncated]" {
		t.Fatalf("got %q", got)
	}
}
