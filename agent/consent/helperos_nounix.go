//go:build !unix

package consent

import "io/fs"

// statUID: Windows files have owners in ACLs, not uids.
func statUID(fs.FileInfo) (string, bool) { return "", false }
