//go:build js && wasm

package main

import (
	"encoding/json"
	"syscall/js"

	"github.com/patchbay/patchbay/internal/audit"
)

// newAuditVerifier returns a JavaScript object that checks the relay's audit
// chain in the page, with the same audit.Verifier as patchbay audit verify:
//
//	add(json) string      a page of GET /v1/audit (a JSON array, in seq order);
//	                      "" or why the chain is broken (the first bad record)
//	finish(seq, hash) string   the stored head (GET /v1/audit/head); "" or why not
//	count() number        records verified so far
//
// Every hash is recomputed here, so the result does not rest on the relay's
// word that the records are intact. (Consent receipts' signatures are
// checked by the CLI, which holds the CA pinned at login.)
func newAuditVerifier() js.Value {
	var v audit.Verifier
	obj := js.Global().Get("Object").New()
	obj.Set("add", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 1 || args[0].Type() != js.TypeString {
			return "add wants one JSON string"
		}
		var recs []audit.Record
		if err := json.Unmarshal([]byte(args[0].String()), &recs); err != nil {
			return "the relay's audit page is not valid JSON: " + err.Error()
		}
		for _, r := range recs {
			if err := v.Add(r); err != nil {
				return err.Error()
			}
		}
		return ""
	}))
	obj.Set("finish", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 2 {
			return "finish wants the head's seq and hash"
		}
		if err := v.Finish(int64(args[0].Int()), args[1].String()); err != nil {
			return err.Error()
		}
		return ""
	}))
	obj.Set("count", js.FuncOf(func(js.Value, []js.Value) any { return float64(v.Count()) }))
	return obj
}
