package api

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/release"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/releases"
	"github.com/patchbay/patchbay/server/store"
)

// Agent self-updates (patchbay agents upgrade) are jobs of the reserved
// plugin wire.UpgradePlugin whose version is a release in the relay's
// --releases directory. The relay checks that the release exists and is
// signed (not by whom: each agent verifies the signature against its own
// allowed signers) and gives each run the manifest's line for the agent's
// platform; everything else (canary, max failures, concurrency, expiry,
// cancel, audit, results) is a job's.

// planUpgrade fills in job (validated generic fields) for a self-update.
func (a *API) planUpgrade(req apiv1.JobCreate, job store.Job) (store.Job, int, error) {
	bad := http.StatusBadRequest
	if req.Version == "" {
		return store.Job{}, bad, errors.New("an agent upgrade needs the release version: pass --version V (a directory of the relay's --releases)")
	}
	// A dry run is allowed: each agent fetches and verifies the release and
	// checks that the binary runs, without installing it.
	for k, v := range req.Params {
		if k != wire.UpgradeRollbackAfter {
			return store.Job{}, bad, fmt.Errorf("an agent upgrade takes only the parameter %s, not %q", wire.UpgradeRollbackAfter, k)
		}
		if d, err := time.ParseDuration(v); err != nil || d < time.Second || d > 24*time.Hour {
			return store.Job{}, bad, fmt.Errorf("rollback-after %q: want a duration from 1s to 24h, e.g. 5m", v)
		}
	}
	rel, err := a.Releases.Get(req.Version)
	if err != nil {
		return store.Job{}, http.StatusNotFound, fmt.Errorf("agent upgrade: %w", err)
	}
	if !rel.Signed {
		return store.Job{}, bad, fmt.Errorf("release %s has no %s: sign its %s with the organisation's release key (patchbay plugins sign's SSHSIG, namespace %s)",
			req.Version, release.SigName, release.SumsName, "patchbay-release")
	}
	job.Plugin, job.PluginVersion, job.Params = wire.UpgradePlugin, rel.Version, req.Params
	return job, 0, nil
}

// upgradeBuild is the release's agent binary for os/arch, as an artifact
// (name, version, SHA-256, size); nil when the release has none.
func upgradeBuild(dir releases.Dir, version, goos, goarch string) (*store.Artifact, error) {
	rel, err := dir.Get(version)
	if err != nil {
		return nil, err
	}
	name := release.AgentName(version, goos, goarch)
	line, err := (&release.Manifest{Files: rel.Files}).Lookup(name)
	if errors.Is(err, release.ErrNotInRelease) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	path, err := dir.Path(version, name)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &store.Artifact{Kind: store.KindPlugin, Name: wire.UpgradePlugin, Version: version, OS: goos, Arch: goarch, SHA256: line.SHA256, Size: st.Size()}, nil
}
