package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// Naming a plugin or script. Agents, jobs and sessions are resolved by the
// relay (an ID, a unique ID prefix, a hostname: indexed queries that stay
// cheap at 19,000 agents). The catalog is small (tens to hundreds of files)
// and the relay already lists it by name, so plugins and scripts are
// resolved here over list calls: NAME (its newest version), NAME@VERSION, or
// a SHA-256 or a unique prefix of one (the SHA256 column of the list).

// artifactRefHelp says how a command names a plugin or script.
func artifactRefHelp(kind string) string {
	return strings.ToUpper(kind) + ` is a ` + kind + `'s name (its newest version), NAME@VERSION, or its SHA-256 or a
unique prefix of it, as the SHA256 column of patchbay ` + kind + `s list shows. A name whose
version has builds for several platforms lists them with their SHA-256: pick one.`
}

// maxListed is how many candidates an ambiguous name lists.
const maxListed = 10

// resolveArtifact returns the one plugin or script (kind) that ref names.
func resolveArtifact(ctx context.Context, c *client.Client, kind, ref string) (apiv1.Artifact, error) {
	list, show := c.Plugins, c.Plugin
	if kind == apiv1.KindScript {
		list, show = c.Scripts, c.Script
	}
	if isHex(ref) && len(ref) == 64 {
		return show(ctx, ref)
	}
	fail := func(format string, args ...any) (apiv1.Artifact, error) {
		return apiv1.Artifact{}, fmt.Errorf("find %s %s: %s", kind, ref, fmt.Sprintf(format, args...))
	}
	name, version, hasVersion := strings.Cut(ref, "@")
	arts, err := list(ctx, name)
	if err != nil {
		return apiv1.Artifact{}, err
	}
	if len(arts) > 0 { // newest version first
		want := arts[0].Version
		if hasVersion {
			want = version
		}
		var builds []apiv1.Artifact
		var versions []string
		for _, art := range arts {
			if art.Version == want {
				builds = append(builds, art)
			}
			if len(versions) == 0 || versions[len(versions)-1] != art.Version {
				versions = append(versions, art.Version)
			}
		}
		switch len(builds) {
		case 0:
			return fail("no version %s in the catalog; it has %s", version, strings.Join(versions, ", "))
		case 1:
			return builds[0], nil
		}
		return fail("%s %s has %d builds: %s: name one by its SHA-256 prefix", name, want, len(builds), artifactList(builds))
	}
	if !hasVersion && isHex(ref) {
		all, err := list(ctx, "")
		if err != nil {
			return apiv1.Artifact{}, err
		}
		var found []apiv1.Artifact
		for _, art := range all {
			if strings.HasPrefix(art.SHA256, ref) {
				found = append(found, art)
			}
		}
		switch len(found) {
		case 1:
			return found[0], nil
		case 0:
		default:
			return fail("the SHA-256 prefix names %d %ss: %s: give more of it", len(found), kind, artifactList(found))
		}
	}
	return fail("no %s with that name, name@version or SHA-256 prefix: patchbay %ss list shows them", kind, kind)
}

// artifactList lists candidates: "cacheclear 1.2.0 linux/amd64 9f86d081884c, ...".
func artifactList(arts []apiv1.Artifact) string {
	parts := make([]string, 0, maxListed)
	for i, art := range arts {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("and %d more", len(arts)-maxListed))
			break
		}
		parts = append(parts, clean(art.Name+" "+art.Version)+" "+platform(art)+" "+shortSHA(art.SHA256))
	}
	return strings.Join(parts, ", ")
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
