package api

// The catalog: signed plugins and scripts, content-addressed by SHA-256.
//
// Trust model (DESIGN.md decision 4): the relay checks that a published file's
// SSHSIG signature is intact (it matches the file and the key embedded in the
// signature), so a corrupted upload or a mismatched .sig is refused at once with
// a useful message. It does NOT decide whether the signer is trusted: every agent
// verifies the signature and SHA-256 of the exact file it launches against its
// own allowed_signers file, fixed at install time. The relay can therefore store
// anything an admin uploads without being able to make an agent run it: a
// compromised relay cannot push code.

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/manifest"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/plugins/scriptmeta"
	"github.com/patchbay/patchbay/plugins/signature"
	"github.com/patchbay/patchbay/server/store"
)

// transferTimeout extends the relay's read and write deadlines (30 s and 60 s)
// for catalog uploads and agent downloads of large files.
const transferTimeout = 15 * time.Minute

// maxScriptUpload bounds the whole multipart body of a script upload.
const maxScriptUpload = apiv1.MaxScriptSize + apiv1.MaxSignature + 64<<10

// registerCatalog adds the plugin and script catalog routes.
func (a *API) registerCatalog(mux *http.ServeMux) {
	mux.Handle("POST /v1/plugins", a.auth(apiv1.RoleAdmin, a.handlePluginPublish))
	mux.Handle("GET /v1/plugins", a.auth(apiv1.RoleViewer, a.catalogList(store.KindPlugin)))
	mux.Handle("GET /v1/plugins/{sha256}", a.auth(apiv1.RoleViewer, a.catalogShow(store.KindPlugin)))

	mux.Handle("POST /v1/scripts", a.auth(apiv1.RoleAdmin, a.handleScriptPublish))
	mux.Handle("GET /v1/scripts", a.auth(apiv1.RoleViewer, a.catalogList(store.KindScript)))
	mux.Handle("GET /v1/scripts/{sha256}", a.auth(apiv1.RoleViewer, a.catalogShow(store.KindScript)))

	mux.Handle("GET /v1/agent/artifacts/{sha256}", a.agentAuth(a.handleArtifactDownload))
	mux.Handle("GET /v1/agent/artifacts/{sha256}/sig", a.agentAuth(a.handleArtifactSignature))
}

// artifactJSON converts a stored artifact for the API.
func artifactJSON(art store.Artifact, names siteNames) apiv1.Artifact {
	params := make([]apiv1.Param, len(art.Manifest.Params))
	for i, p := range art.Manifest.Params {
		params[i] = apiv1.Param{Name: p.Name, Type: p.Type, Default: p.Default, Required: p.Required,
			Allowed: p.Allowed, Description: p.Description}
	}
	return apiv1.Artifact{
		SHA256: art.SHA256, Kind: art.Kind, Name: art.Name, Version: art.Version, OS: art.OS, Arch: art.Arch,
		Size: art.Size, Description: art.Manifest.Description, Params: params,
		FreeParams:   art.Kind == store.KindScript && !art.HasManifest,
		NeedsConsent: art.Manifest.NeedsConsent, MayReboot: art.Manifest.MayReboot,
		Signer: art.SignerFingerprint, SignerKeyType: art.SignerKeyType,
		PublishedBy: art.PublishedBy, PublishedAt: art.PublishedAt, Sites: names.names(art.Sites),
	}
}

// upload is a catalog upload read from a multipart body. The file is spooled
// to a temporary file while it is hashed, so a large plugin is held in memory
// once (when it is stored), not several times over while it arrives.
type upload struct {
	tmp      *os.File
	fileName string // base name the client gave the file part
	size     int64
	sha256   string
	sig      []byte
	manifest []byte // plugins only
}

func (u *upload) close() {
	if u.tmp != nil {
		u.tmp.Close()
		os.Remove(u.tmp.Name())
	}
}

// content reads the whole spooled file.
func (u *upload) content() ([]byte, error) {
	b := make([]byte, u.size)
	if _, err := io.ReadFull(io.NewSectionReader(u.tmp, 0, u.size), b); err != nil {
		return nil, fmt.Errorf("read spooled upload: %w", err)
	}
	return b, nil
}

// reader returns a fresh reader over the spooled file.
func (u *upload) reader() io.Reader { return io.NewSectionReader(u.tmp, 0, u.size) }

// readUpload reads a multipart/form-data body of at most maxBody bytes with the
// parts file (at most maxFile bytes), sig and, if withManifest, manifest. On
// failure it has answered and returns nil; otherwise the caller must close the
// upload.
func (a *API) readUpload(w http.ResponseWriter, r *http.Request, what string, maxBody, maxFile int64, withManifest bool) *upload {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(transferTimeout)) // not supported by every ResponseWriter (tests)
	_ = rc.SetWriteDeadline(time.Now().Add(transferTimeout))
	parts := "file and sig"
	if withManifest {
		parts = "file, sig and manifest"
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	mr, err := r.MultipartReader()
	if err != nil {
		WriteError(w, http.StatusBadRequest, "want a multipart/form-data body with the parts %s (%v): use patchbay %ss publish", parts, err, what)
		return nil
	}
	u := &upload{}
	ok := false
	defer func() {
		if !ok {
			u.close()
		}
	}()
	tooLarge := func(err error) bool {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			WriteError(w, http.StatusRequestEntityTooLarge, "upload over %s, the most the relay accepts for a %s", fmtBytes(maxBody), what)
			return true
		}
		return false
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !tooLarge(err) {
				WriteError(w, http.StatusBadRequest, "read upload: %v", err)
			}
			return nil
		}
		name := part.FormName()
		switch {
		case name == apiv1.PartFile && u.tmp == nil:
			if u.tmp, err = os.CreateTemp("", "patchbay-upload-*"); err != nil {
				a.internal(w, r, "spool upload", err)
				return nil
			}
			u.fileName = baseName(part.FileName())
			h := sha256.New()
			u.size, err = io.Copy(io.MultiWriter(u.tmp, h), io.LimitReader(part, maxFile+1))
			if err != nil {
				if !tooLarge(err) {
					WriteError(w, http.StatusBadRequest, "read the file part: %v", err)
				}
				return nil
			}
			if u.size > maxFile {
				WriteError(w, http.StatusRequestEntityTooLarge, "the %s is over %s, the most the relay accepts", what, fmtBytes(maxFile))
				return nil
			}
			u.sha256 = hexSum(h)
		case name == apiv1.PartSig && u.sig == nil:
			if u.sig, err = readPart(part, apiv1.MaxSignature); err != nil {
				if !tooLarge(err) {
					WriteError(w, http.StatusBadRequest, "the sig part: %v: send the armored .sig that patchbay %ss sign wrote", err, what)
				}
				return nil
			}
		case name == apiv1.PartManifest && withManifest && u.manifest == nil:
			if u.manifest, err = readPart(part, apiv1.MaxManifest); err != nil {
				if !tooLarge(err) {
					WriteError(w, http.StatusBadRequest, "the manifest part: %v", err)
				}
				return nil
			}
		case name == apiv1.PartFile || name == apiv1.PartSig || name == apiv1.PartManifest && withManifest:
			WriteError(w, http.StatusBadRequest, "the %s part is given twice", name)
			return nil
		default:
			WriteError(w, http.StatusBadRequest, "unexpected part %q: a %s upload has the parts %s", name, what, parts)
			return nil
		}
	}
	switch {
	case u.tmp == nil:
		WriteError(w, http.StatusBadRequest, "the upload has no file part: send the %s as the part %q", what, apiv1.PartFile)
	case u.size == 0:
		WriteError(w, http.StatusBadRequest, "the %s is empty", what)
	case len(bytes.TrimSpace(u.sig)) == 0:
		WriteError(w, http.StatusBadRequest, "the upload has no signature: sign the file first (patchbay %ss sign --key KEY FILE) and send FILE.sig as the part %q", what, apiv1.PartSig)
	case withManifest && len(bytes.TrimSpace(u.manifest)) == 0:
		WriteError(w, http.StatusBadRequest, "the upload has no manifest: send the JSON printed by `PLUGIN manifest` as the part %q", apiv1.PartManifest)
	default:
		ok = true
		return u
	}
	return nil
}

// readPart reads a small part of at most max bytes.
func readPart(p *multipart.Part, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(p, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("over %s", fmtBytes(max))
	}
	return b, nil
}

// baseName keeps the last element of a client-supplied file name, whichever
// separator the client's OS uses.
func baseName(s string) string {
	s = path.Base(strings.ReplaceAll(s, `\`, "/"))
	if s == "." || s == "/" {
		return ""
	}
	return s
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// fmtBytes formats a limit for messages: "256 MiB", "64 KiB", "100 bytes".
func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// inspectSignature checks the signature's integrity against the file (not
// whether its signer is trusted: see the comment at the top of this file).
// On failure it has answered 400.
func inspectSignature(w http.ResponseWriter, u *upload, what string) (signature.Signer, bool) {
	signer, err := signature.Inspect(u.sig, u.reader())
	switch {
	case err == nil:
		return signer, true
	case errors.Is(err, signature.ErrWrongNamespace):
		WriteError(w, http.StatusBadRequest, "%v: sign it with patchbay %ss sign --key KEY FILE (or ssh-keygen -Y sign -n %s -f KEY FILE)", err, what, signature.Namespace)
	case errors.Is(err, signature.ErrUnsupportedKey):
		WriteError(w, http.StatusBadRequest, "%v: sign it with an Ed25519, ECDSA or RSA (2048 bits or more) key", err)
	default:
		WriteError(w, http.StatusBadRequest,
			"signature does not match the file (%v): re-sign it with patchbay %ss sign --key KEY FILE and publish FILE with its new .sig", err, what)
	}
	return signature.Signer{}, false
}

// handlePluginPublish stores a signed plugin executable: POST /v1/plugins.
func (a *API) handlePluginPublish(w http.ResponseWriter, r *http.Request, c caller) {
	u := a.readUpload(w, r, store.KindPlugin, apiv1.MaxPluginUpload, apiv1.MaxPluginUpload, true)
	if u == nil {
		return
	}
	defer u.close()

	// The manifest comes from the publisher (the CLI runs `PLUGIN manifest`):
	// the relay never executes uploaded code. The agent checks at run time that
	// the plugin reports this same name and version.
	var m manifest.Manifest
	if err := json.Unmarshal(u.manifest, &m); err != nil {
		WriteError(w, http.StatusBadRequest, "manifest: %v: send the JSON printed by `PLUGIN manifest`", err)
		return
	}
	if err := m.Validate(); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if m.Name == wire.UpgradePlugin {
		WriteError(w, http.StatusBadRequest, "plugin name %s is reserved for agent self-updates (patchbay agents upgrade): rename the plugin", m.Name)
		return
	}
	goos, goarch, err := executablePlatform(u.tmp)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "not an executable (%v): publish the plugin's compiled binary (ELF, PE or Mach-O)", err)
		return
	}
	if !m.Supports(goos) {
		WriteError(w, http.StatusBadRequest, "the executable is built for %s/%s but the manifest of %s supports only %s: build it for one of those, or add %s to the manifest's os list",
			goos, goarch, m.Name, strings.Join(m.OS, ", "), goos)
		return
	}
	signer, ok := inspectSignature(w, u, store.KindPlugin)
	if !ok {
		return
	}
	art := store.Artifact{
		SHA256: u.sha256, Kind: store.KindPlugin, Name: m.Name, Version: m.Version, OS: goos, Arch: goarch,
		Size: u.size, Manifest: m, HasManifest: true,
		Signature: string(u.sig), SignerFingerprint: signer.Fingerprint, SignerKeyType: signer.KeyType,
		PublishedBy: c.actor(), PublishedAt: a.now(),
	}
	a.publish(w, r, c, u, art, "plugin.publish")
}

// handleScriptPublish stores a signed script: POST /v1/scripts.
//
// Its name is the manifest's, else the file name without its extension. Its
// version is the manifest's; a script without one (or with the default 0.0.0)
// gets "0.0.0+" and the first 12 hex digits of its SHA-256: versions are
// immutable, so every edit of an unversioned script is a new version, and the
// newest of those is the one published last (see store.CompareArtifactVersions).
func (a *API) handleScriptPublish(w http.ResponseWriter, r *http.Request, c caller) {
	u := a.readUpload(w, r, store.KindScript, maxScriptUpload, apiv1.MaxScriptSize, false)
	if u == nil {
		return
	}
	defer u.close()
	if u.fileName == "" {
		WriteError(w, http.StatusBadRequest, "the file part has no file name: the relay needs it for the script's name and shell")
		return
	}
	content, err := u.content()
	if err != nil {
		a.internal(w, r, "publish script", err)
		return
	}
	meta, err := scriptmeta.Parse(u.fileName, content)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "script %s: %v: fix its header (see scripts/README.md)", u.fileName, err)
		return
	}
	m := meta.Manifest
	if m.Version == "" || m.Version == scriptmeta.DefaultVersion {
		m.Version = scriptmeta.DefaultVersion + "+" + u.sha256[:12]
	}
	if err := m.Validate(); err != nil {
		WriteError(w, http.StatusBadRequest, "script %s: %v", u.fileName, err)
		return
	}
	signer, ok := inspectSignature(w, u, store.KindScript)
	if !ok {
		return
	}
	art := store.Artifact{
		SHA256: u.sha256, Kind: store.KindScript, Name: m.Name, Version: m.Version,
		OS: strings.Join(slices.Sorted(slices.Values(m.OS)), ","), Size: u.size, Manifest: m, HasManifest: meta.HasManifest,
		Signature: string(u.sig), SignerFingerprint: signer.Fingerprint, SignerKeyType: signer.KeyType,
		PublishedBy: c.actor(), PublishedAt: a.now(),
	}
	a.publishContent(w, r, c, art, content, "script.publish")
}

func (a *API) publish(w http.ResponseWriter, r *http.Request, c caller, u *upload, art store.Artifact, action string) {
	content, err := u.content()
	if err != nil {
		a.internal(w, r, "publish "+art.Kind, err)
		return
	}
	a.publishContent(w, r, c, art, content, action)
}

// publishContent stores art, audits a new publication and answers 201 with
// the stored artifact, or 200 when that file was already published as that
// version (nothing changed, nothing is audited).
func (a *API) publishContent(w http.ResponseWriter, r *http.Request, c caller, art store.Artifact, content []byte, action string) {
	ctx := r.Context()
	var err error
	if art.Sites, err = a.publishSites(r); err != nil {
		a.siteError(w, r, err)
		return
	}
	created, err := a.Store.PutArtifact(ctx, art, content)
	var ce *store.ConflictError
	switch {
	case errors.As(err, &ce) && ce.Existing.SHA256 == art.SHA256:
		WriteError(w, http.StatusConflict, "%v; it cannot also be %s %s: publish it under its own name and version", ce, art.Name, art.Version)
		return
	case errors.As(err, &ce):
		WriteError(w, http.StatusConflict, "%v: versions are immutable, so bump the version in the %s's manifest, sign it and publish again", ce, art.Kind)
		return
	case err != nil:
		a.internal(w, r, "publish "+art.Kind, err)
		return
	}
	if created {
		detail := map[string]string{
			"sha256": art.SHA256, "size": strconv.FormatInt(art.Size, 10), "os": art.OS,
			"signer": art.SignerFingerprint, "signer_key_type": art.SignerKeyType,
		}
		if art.Arch != "" {
			detail["arch"] = art.Arch
		}
		if err := a.audit(ctx, c.actor(), action, art.Name+"@"+art.Version, detail); err != nil {
			a.internal(w, r, "publish "+art.Kind, err)
			return
		}
		a.Log.Info().Str("kind", art.Kind).Str("name", art.Name).Str("version", art.Version).
			Str("platform", art.Platform()).Str("sha256", art.SHA256).Str("by", c.tok.Name).Msg("published")
	}
	stored, err := a.Store.GetArtifact(ctx, art.SHA256)
	if err != nil {
		a.internal(w, r, "publish "+art.Kind, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	names, err := a.siteNames(ctx)
	if err != nil {
		a.internal(w, r, "publish "+art.Kind, err)
		return
	}
	writeJSON(w, status, artifactJSON(stored, names))
}

// executablePlatform reads GOOS and GOARCH from an executable's header.
func executablePlatform(f io.ReaderAt) (goos, goarch string, err error) {
	var magic [4]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil {
		return "", "", errors.New("too short for an executable header")
	}
	be, le := binary.BigEndian.Uint32(magic[:]), binary.LittleEndian.Uint32(magic[:])
	switch {
	case string(magic[:]) == elf.ELFMAG:
		return elfPlatform(f)
	case magic[0] == 'M' && magic[1] == 'Z':
		return pePlatform(f)
	case be == macho.Magic32 || be == macho.Magic64 || le == macho.Magic32 || le == macho.Magic64:
		return machoPlatform(f)
	case be == macho.MagicFat:
		if _, err := macho.NewFatFile(f); err == nil {
			return "", "", errors.New("a universal (fat) Mach-O binary: publish one executable per architecture (GOARCH=amd64 and GOARCH=arm64)")
		}
	}
	return "", "", errors.New("neither ELF, PE nor Mach-O")
}

func elfPlatform(r io.ReaderAt) (string, string, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return "", "", fmt.Errorf("ELF: %w", err)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", "", fmt.Errorf("ELF file of type %v, not an executable", f.Type)
	}
	goos := "linux"
	switch {
	case f.OSABI == elf.ELFOSABI_FREEBSD:
		goos = "freebsd"
	case f.Section(".note.netbsd.ident") != nil:
		goos = "netbsd"
	case f.Section(".note.openbsd.ident") != nil:
		goos = "openbsd"
	}
	little := f.ByteOrder == binary.LittleEndian
	var goarch string
	switch f.Machine {
	case elf.EM_X86_64:
		goarch = "amd64"
	case elf.EM_386:
		goarch = "386"
	case elf.EM_AARCH64:
		goarch = "arm64"
	case elf.EM_ARM:
		goarch = "arm"
	case elf.EM_RISCV:
		if f.Class == elf.ELFCLASS64 {
			goarch = "riscv64"
		}
	case elf.EM_PPC64:
		goarch = "ppc64"
		if little {
			goarch = "ppc64le"
		}
	case elf.EM_S390:
		goarch = "s390x"
	case elf.EM_LOONGARCH:
		goarch = "loong64"
	case elf.EM_MIPS:
		goarch = "mips"
		if f.Class == elf.ELFCLASS64 {
			goarch = "mips64"
		}
		if little {
			goarch += "le"
		}
	}
	if goarch == "" {
		return "", "", fmt.Errorf("ELF executable for an unsupported machine %v", f.Machine)
	}
	return goos, goarch, nil
}

func pePlatform(r io.ReaderAt) (string, string, error) {
	f, err := pe.NewFile(r)
	if err != nil {
		return "", "", fmt.Errorf("PE: %w", err)
	}
	if f.Characteristics&pe.IMAGE_FILE_EXECUTABLE_IMAGE == 0 || f.Characteristics&pe.IMAGE_FILE_DLL != 0 {
		return "", "", errors.New("PE file that is not an executable image (a DLL or object file)")
	}
	switch f.Machine {
	case pe.IMAGE_FILE_MACHINE_AMD64:
		return "windows", "amd64", nil
	case pe.IMAGE_FILE_MACHINE_I386:
		return "windows", "386", nil
	case pe.IMAGE_FILE_MACHINE_ARM64:
		return "windows", "arm64", nil
	case pe.IMAGE_FILE_MACHINE_ARMNT:
		return "windows", "arm", nil
	}
	return "", "", fmt.Errorf("PE executable for an unsupported machine %#x", f.Machine)
}

func machoPlatform(r io.ReaderAt) (string, string, error) {
	f, err := macho.NewFile(r)
	if err != nil {
		return "", "", fmt.Errorf("Mach-O: %w", err)
	}
	if f.Type != macho.TypeExec {
		return "", "", fmt.Errorf("Mach-O file of type %v, not an executable", f.Type)
	}
	switch f.Cpu {
	case macho.CpuAmd64:
		return "darwin", "amd64", nil
	case macho.CpuArm64:
		return "darwin", "arm64", nil
	}
	return "", "", fmt.Errorf("Mach-O executable for an unsupported CPU %v", f.Cpu)
}

// catalogList answers GET /v1/plugins and GET /v1/scripts (?name= filters).
func (a *API) catalogList(kind string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		arts, err := a.Store.ListArtifacts(r.Context(), kind, r.URL.Query().Get("name"))
		if err != nil {
			a.internal(w, r, "list "+kind+"s", err)
			return
		}
		names, err := a.siteNames(r.Context())
		if err != nil {
			a.internal(w, r, "list "+kind+"s", err)
			return
		}
		out := make([]apiv1.Artifact, 0, len(arts))
		for _, art := range arts {
			if art.AvailableIn(c.scope()) {
				out = append(out, artifactJSON(sitesInScope(art, c.scope()), names))
			}
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// catalogShow answers GET /v1/plugins/{sha256} and GET /v1/scripts/{sha256}.
func (a *API) catalogShow(kind string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		art, ok := a.findArtifact(w, r)
		if !ok {
			return
		}
		if !art.AvailableIn(c.scope()) {
			WriteError(w, http.StatusNotFound, "no file with sha256 %s in the catalog: see patchbay plugins list and patchbay scripts list", art.SHA256)
			return
		}
		if art.Kind != kind {
			WriteError(w, http.StatusNotFound, "no %s with sha256 %s: it is a %s (see /v1/%ss/%s)", kind, art.SHA256, art.Kind, art.Kind, art.SHA256)
			return
		}
		names, err := a.siteNames(r.Context())
		if err != nil {
			a.internal(w, r, "show "+kind, err)
			return
		}
		writeJSON(w, http.StatusOK, artifactJSON(sitesInScope(art, c.scope()), names))
	}
}

// sitesInScope keeps, of the sites art is published to, those scope
// reaches: where else it is published is other customers' business.
func sitesInScope(art store.Artifact, scope store.Scope) store.Artifact {
	if !scope.All {
		art.Sites = slices.DeleteFunc(slices.Clone(art.Sites), func(s string) bool { return s != store.AllSites && !scope.Has(s) })
	}
	return art
}

// findArtifact validates the {sha256} path value and looks it up. On failure
// it has answered.
func (a *API) findArtifact(w http.ResponseWriter, r *http.Request) (store.Artifact, bool) {
	sha := r.PathValue("sha256")
	if !validSHA256(sha) {
		WriteError(w, http.StatusBadRequest, "sha256 %q: want 64 lower-case hex digits", sha)
		return store.Artifact{}, false
	}
	art, err := a.Store.GetArtifact(r.Context(), sha)
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, http.StatusNotFound, "no file with sha256 %s in the catalog: see patchbay plugins list and patchbay scripts list", sha)
		return store.Artifact{}, false
	}
	if err != nil {
		a.internal(w, r, "look up catalog file", err)
		return store.Artifact{}, false
	}
	return art, true
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// agentHandlerFunc is a handler for a request from an enrolled agent.
type agentHandlerFunc func(w http.ResponseWriter, r *http.Request, ag store.Agent)

// agentAuth authenticates an agent by its mutual-TLS client certificate (not
// a bearer token): the certificate must verify against the relay's CA (Go's
// TLS server has checked the chain: VerifiedChains), its subject must be an
// agent ID, and that agent must be enrolled in the store and not revoked.
func (a *API) agentAuth(h agentHandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs := r.TLS
		if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
			WriteError(w, http.StatusUnauthorized, "agent endpoint: no client certificate from this relay's CA: enroll the agent first (patchbay-agent enroll)")
			return
		}
		id, err := certs.AgentID(cs.PeerCertificates[0])
		if err != nil {
			WriteError(w, http.StatusUnauthorized, "agent endpoint: %v", err)
			return
		}
		ag, err := a.Store.GetAgent(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			WriteError(w, http.StatusForbidden, "agent endpoint: agent %s is not enrolled with this relay: enroll it again", id)
			return
		}
		if err != nil {
			a.internal(w, r, "look up agent", err)
			return
		}
		if !ag.RevokedAt.IsZero() {
			WriteError(w, http.StatusForbidden, "agent endpoint: agent %s is revoked; enroll it again with a new token", id)
			return
		}
		h(w, r, ag)
	})
}

// handleArtifactDownload sends a catalog file to an agent. Range requests and
// If-None-Match work (http.ServeContent), so an interrupted download of a
// large plugin can resume.
func (a *API) handleArtifactDownload(w http.ResponseWriter, r *http.Request, ag store.Agent) {
	art, ok := a.findArtifact(w, r)
	if !ok {
		return
	}
	if !art.PublishedTo(ag.SiteID) {
		WriteError(w, http.StatusNotFound, "no file with sha256 %s is published to this agent's site", art.SHA256)
		return
	}
	content, err := blobs.get(r.Context(), art.SHA256, func() ([]byte, error) {
		return a.Store.ArtifactContent(context.WithoutCancel(r.Context()), art.SHA256)
	})
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return // the agent went away
	}
	if err != nil {
		a.internal(w, r, "read catalog file", err)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(transferTimeout))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, max-age=31536000, immutable") // content-addressed
	h.Set("ETag", `"`+art.SHA256+`"`)
	http.ServeContent(w, r, "", art.PublishedAt, bytes.NewReader(content))
}

// handleArtifactSignature sends the armored SSHSIG signature of a catalog file.
func (a *API) handleArtifactSignature(w http.ResponseWriter, r *http.Request, ag store.Agent) {
	art, ok := a.findArtifact(w, r)
	if !ok {
		return
	}
	if !art.PublishedTo(ag.SiteID) {
		WriteError(w, http.StatusNotFound, "no file with sha256 %s is published to this agent's site", art.SHA256)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(art.Signature)))
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, art.Signature)
}

// blobs shares catalog file contents between agent downloads. When a job
// starts on a large fleet, thousands of agents fetch the same plugin at once:
// without it each download would read its own copy of the file from the
// database (5,000 agents x 20 MB = 100 GB). With it, one read is shared by
// every concurrent request for that file, and recently fetched files stay in
// memory up to blobCacheBytes. Content is addressed by SHA-256 and immutable,
// so an entry can never be stale; the metadata (does this relay's store have
// the file?) is still checked on every request.
var blobs = &blobCache{max: blobCacheBytes, entries: map[string]*blobEntry{}, lru: list.New()}

// blobCacheBytes bounds the contents kept after their downloads end.
const blobCacheBytes = 512 << 20

type blobCache struct {
	mu      sync.Mutex
	max     int64
	size    int64 // bytes of loaded entries in lru
	entries map[string]*blobEntry
	lru     *list.List // of *blobEntry, most recently used first
}

type blobEntry struct {
	sha  string
	done chan struct{} // closed once data or err is set
	data []byte
	err  error
	elem *list.Element
}

// get returns the content of sha, calling load at most once for concurrent
// callers. A failed load is not kept.
func (c *blobCache) get(ctx context.Context, sha string, load func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	e, ok := c.entries[sha]
	if ok {
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		select {
		case <-e.done:
			return e.data, e.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e = &blobEntry{sha: sha, done: make(chan struct{})}
	e.elem = c.lru.PushFront(e)
	c.entries[sha] = e
	c.mu.Unlock()

	e.data, e.err = load()

	c.mu.Lock()
	switch {
	case e.err != nil || int64(len(e.data)) > c.max/2:
		c.remove(e) // waiters still get the result through e
	default:
		c.size += int64(len(e.data))
		for back := c.lru.Back(); c.size > c.max && back != nil; {
			old := back.Value.(*blobEntry)
			back = back.Prev()
			if old != e && isClosed(old.done) {
				c.remove(old)
				c.size -= int64(len(old.data))
			}
		}
	}
	c.mu.Unlock()
	close(e.done)
	return e.data, e.err
}

// remove drops e from the cache; c.mu is held.
func (c *blobCache) remove(e *blobEntry) {
	if c.entries[e.sha] == e {
		delete(c.entries, e.sha)
		c.lru.Remove(e.elem)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
