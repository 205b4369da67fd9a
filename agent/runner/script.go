package runner

import (
	"encoding/json"
	"path/filepath"

	"github.com/patchbay/patchbay/plugins/scriptmeta"
	"github.com/patchbay/patchbay/plugins/sdk"
)

// The script plugin's own parameters are name, timeout and max_output
// (scriptmeta.IsReservedParam); every other job parameter belongs to the
// script and travels JSON-encoded in the plugin's "args" parameter, so the
// script plugin's manifest stays fixed.

// prepareScript validates the job's parameters against the verified
// script's own header manifest and builds the script plugin's parameters.
// The attachment points at the verified bytes in the private cache; the
// script plugin hashes them again before it runs them. It also returns the
// script's manifest (whether it needs consent, its description).
func (r *Runner) prepareScript(scr verified, params map[string]string) (*sdk.Attachment, map[string]string, *sdk.Manifest, error) {
	meta, err := scriptmeta.Parse(scr.ref.Name+".script", scr.data)
	if err != nil {
		return nil, nil, nil, refusedf("script %s: %v", scr.ref.Name, err)
	}
	plugin := map[string]string{}
	args := map[string]string{}
	if _, ok := params["args"]; ok {
		return nil, nil, nil, refusedf("script %s: \"args\" is reserved; pass each script parameter as --param NAME=VALUE", scr.ref.Name)
	}
	for k, v := range params {
		if scriptmeta.IsReservedParam(k) {
			plugin[k] = v
		} else {
			args[k] = v
		}
	}
	if _, err := meta.ValidateParams(args); err != nil {
		return nil, nil, nil, refusedf("script %s: %v", scr.ref.Name, err)
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, nil, nil, refusedf("script %s: %v", scr.ref.Name, err)
	}
	plugin["name"] = scr.ref.Name
	plugin["args"] = string(b)
	att := &sdk.Attachment{Name: scr.ref.Name, Path: filepath.Join(r.cacheDir, scr.ref.SHA256), SHA256: scr.ref.SHA256}
	m := meta.Manifest
	if m.Version == "" {
		m.Version = scr.ref.Version
	}
	return att, plugin, &m, nil
}
