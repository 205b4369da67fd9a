package api

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// exportPage is how many runs the export reads at a time: a job over
// 100,000 agents is streamed, never held in memory whole.
const exportPage = 1000

// handleJobExport streams every run of a job with its full stored output
// (the last 256 KiB an agent reported) as JSON ({"job": ..., "results":
// [...]}) or CSV (format=csv).
func (a *API) handleJobExport(w http.ResponseWriter, r *http.Request, c caller) {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" {
		WriteError(w, http.StatusBadRequest, "format %q: want json or csv", format)
		return
	}
	j, counts, _, ok := a.getJob(w, r, c, "export job")
	if !ok {
		return
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		cw.Write(apiv1.JobCSVHeader)
		a.eachResult(r, j.ID, func(res apiv1.RunResult) error {
			return cw.Write([]string{res.RunID, res.AgentID, res.Hostname, res.State, strconv.FormatBool(res.Needed),
				strconv.FormatBool(res.Changed), strconv.FormatBool(res.RebootRequired), res.Version,
				csvTime(res.Started), csvTime(res.Ended), strconv.FormatInt(res.DurationMS, 10), res.Summary, res.Error,
				res.Signer, res.Output})
		})
		cw.Flush()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	head, _ := json.Marshal(a.jobJSON(j, counts, nil))
	w.Write([]byte(`{"job":`))
	w.Write(head)
	a.streamResultsJSON(w, r, j.ID)
	w.Write([]byte("}\n"))
}

// eachResult calls emit for every run of a job in seq order, reading the
// store a page at a time. It stops early when emit fails (the client went
// away); a store error is logged, since the headers are already sent.
func (a *API) eachResult(r *http.Request, jobID string, emit func(apiv1.RunResult) error) {
	for after := -1; ; {
		runs, err := a.Store.JobRuns(r.Context(), jobID, after, exportPage)
		if err != nil {
			a.Log.Error().Err(err).Str("job_id", jobID).Msg("stream job results") // the body ends short
			return
		}
		for _, run := range runs {
			after = run.Seq
			if err := emit(runJSON(run)); err != nil {
				return
			}
		}
		if len(runs) < exportPage {
			return
		}
	}
}

// streamResultsJSON writes `,"results":[...]` (one result per line), for a
// JSON object whose other members are already written.
func (a *API) streamResultsJSON(w http.ResponseWriter, r *http.Request, jobID string) {
	w.Write([]byte(`,"results":[`))
	first := true
	a.eachResult(r, jobID, func(res apiv1.RunResult) error {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		if !first {
			w.Write([]byte(","))
		}
		first = false
		_, err = w.Write(append([]byte("\n"), b...))
		return err
	})
	w.Write([]byte("\n]"))
}

func csvTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
