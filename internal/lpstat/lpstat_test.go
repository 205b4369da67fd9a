package lpstat

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseScheduler(t *testing.T) {
	tests := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{"scheduler is running\n", true, false},
		{"scheduler is not running\n", false, false},
		{"", false, true},
		{"lpstat: Bad file descriptor\n", false, true},
	}
	for _, tt := range tests {
		got, err := ParseScheduler(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseScheduler(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestParsePrinters(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Queue
		wantErr string
	}{
		{"empty", "", nil, ""},
		{"idle, printing, disabled", "printer testq is idle.  enabled since Mon Nov 23 12:04:05 2026\n" +
			"printer big-hp now printing big-hp-7.  enabled since Mon Nov 23 12:04:05 2026\n" +
			"printer stopped disabled since Mon Nov 23 12:04:05 2026 -\n" +
			"\tPaused\n" +
			"\tbackend failed\n",
			[]Queue{{Name: "testq", Enabled: true}, {Name: "big-hp", Enabled: true},
				{Name: "stopped", Reason: "Paused; backend failed"}}, ""},
		{"macOS reason line", "printer Office disabled since Tue Jan  2 09:00:00 2024 -\n\tThe printer is not responding.\n",
			[]Queue{{Name: "Office", Reason: "The printer is not responding."}}, ""},
		{"CRLF and blank lines", "\r\nprinter a is idle.  enabled since Mon Nov 23 12:04:05 2026\r\n\r\n",
			[]Queue{{Name: "a", Enabled: true}}, ""},
		{"indented first", "\tPaused\n", nil, "indented line before any printer"},
		{"not a printer line", "lpstat: Unable to connect to server\n", nil, `want "printer NAME ..."`},
		{"unknown state", "printer x is on fire since yesterday\n", nil, "unknown state"},
		{"truncated", "printer\n", nil, `want "printer NAME ..."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrinters(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseAccepting(t *testing.T) {
	in := "testq accepting requests since Mon Nov 23 12:04:05 2026\n" +
		"other not accepting requests since Mon Nov 23 12:04:05 2026 -\n" +
		"\tRejecting Jobs\n"
	acc, reasons, err := ParseAccepting(in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(acc, map[string]bool{"testq": true, "other": false}) || reasons["other"] != "Rejecting Jobs" {
		t.Fatalf("got %v %v", acc, reasons)
	}
	for _, bad := range []string{"\tRejecting Jobs\n", "testq\n", "testq is sulking since Monday\n"} {
		if _, _, err := ParseAccepting(bad); err == nil {
			t.Errorf("ParseAccepting(%q) succeeded", bad)
		}
	}
	qs := []Queue{{Name: "testq", Enabled: true}, {Name: "other", Enabled: true}, {Name: "new", Enabled: true}}
	MergeAccepting(qs, acc, reasons)
	want := []Queue{{Name: "testq", Enabled: true, Accepting: true},
		{Name: "other", Enabled: true, Reason: "Rejecting Jobs"}, {Name: "new", Enabled: true, Accepting: true}}
	if !reflect.DeepEqual(qs, want) {
		t.Fatalf("merged = %+v", qs)
	}
}

func TestParseJobs(t *testing.T) {
	loc := time.FixedZone("test", 3600)
	tests := []struct {
		name    string
		in      string
		want    []Job
		wantErr string
	}{
		{"empty", "", nil, ""},
		{"two jobs", "testq-1                 root              1024   Mon Nov 23 12:04:05 2026\n" +
			"big-hp-12               alice            20480   Tue Jan  2 09:00:00 2024\n",
			[]Job{
				{ID: "testq-1", Queue: "testq", User: "root", Size: 1024, Submitted: time.Date(2026, 11, 23, 12, 4, 5, 0, loc)},
				{ID: "big-hp-12", Queue: "big-hp", User: "alice", Size: 20480, Submitted: time.Date(2024, 1, 2, 9, 0, 0, 0, loc)},
			}, ""},
		{"long format details skipped", "testq-3 bob 10 Mon Nov 23 12:04:05 2026\n\tAlerts: job-hold-until-specified\n\tqueued for testq\n",
			[]Job{{ID: "testq-3", Queue: "testq", User: "bob", Size: 10, Submitted: time.Date(2026, 11, 23, 12, 4, 5, 0, loc)}}, ""},
		{"unknown date format", "testq-4 bob 10 23.11.2026 12:04\n",
			[]Job{{ID: "testq-4", Queue: "testq", User: "bob", Size: 10}}, ""},
		{"no date", "testq-5 bob 10\n", []Job{{ID: "testq-5", Queue: "testq", User: "bob", Size: 10}}, ""},
		{"id without number", "testq bob 10 Mon Nov 23 12:04:05 2026\n", nil, "not QUEUE-NUMBER"},
		{"id ending in dash", "testq- bob 10 Mon Nov 23 12:04:05 2026\n", nil, "not QUEUE-NUMBER"},
		{"size not a number", "testq-1 bob ten Mon Nov 23 12:04:05 2026\n", nil, "size \"ten\""},
		{"too short", "testq-1 bob\n", nil, "want \"QUEUE-ID USER SIZE DATE\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseJobs(tt.in, loc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseLpstatTime(t *testing.T) {
	for _, s := range []string{
		"Mon Nov 23 12:04:05 2026",
		"Mon Nov  3 12:04:05 2026",
		"Mon Nov 3 12:04:05 2026",
		"Mon 23 Nov 2026 12:04:05 PM UTC",
	} {
		if _, ok := ParseTime(s, time.UTC); !ok {
			t.Errorf("ParseTime(%q) failed", s)
		}
	}
	if _, ok := ParseTime("yesterday", time.UTC); ok {
		t.Error("ParseTime(yesterday) succeeded")
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"testq": true, "big-hp_2": true, "Büro": true, "testq-12": true,
		"": false, "-h": false, "a b": false, "a/b": false, "a#b": false, `a"b`: false, "a\nb": false,
		strings.Repeat("x", 128): false,
	} {
		if got := ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzParse feeds arbitrary bytes to every parser: none may panic, and
// what ParseJobs returns always names a queue and a job id.
func FuzzParse(f *testing.F) {
	f.Add("printer testq is idle.  enabled since Mon Nov 23 12:04:05 2026\nprinter s disabled since Mon Nov 23 12:04:05 2026 -\n\tPaused\n")
	f.Add("testq accepting requests since Mon Nov 23 12:04:05 2026\nother not accepting requests since x -\n\tRejecting Jobs\n")
	f.Add("testq-1                 root              1024   Mon Nov 23 12:04:05 2026\n\tqueued for testq\n")
	f.Add("scheduler is running\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseScheduler(s)
		qs, _ := ParsePrinters(s)
		acc, reasons, _ := ParseAccepting(s)
		MergeAccepting(qs, acc, reasons)
		jobs, err := ParseJobs(s, time.UTC)
		for _, j := range jobs {
			if err == nil && (j.Queue == "" || !strings.HasPrefix(j.ID, j.Queue+"-")) {
				t.Fatalf("job %+v: queue not the prefix of its id", j)
			}
		}
		_, _ = ParseTime(s, time.UTC)
		_ = ValidName(s)
	})
}
