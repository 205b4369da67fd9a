package main

import "github.com/patchbay/patchbay/internal/lpstat"

// The lpstat parsers live in internal/lpstat (the agent's stuck-print-queue
// check reads lpstat too); these names keep the plugin's code short.
type (
	queue = lpstat.Queue
	job   = lpstat.Job
)

var (
	parseScheduler = lpstat.ParseScheduler
	parsePrinters  = lpstat.ParsePrinters
	parseAccepting = lpstat.ParseAccepting
	mergeAccepting = lpstat.MergeAccepting
	parseJobs      = lpstat.ParseJobs
	validName      = lpstat.ValidName
	firstLine      = lpstat.FirstLine
)
