package main

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/patchbay/patchbay/plugins/sdk"
)

const (
	idCU  = "2b9c2ad7-1a7b-4d2c-9a0e-0d3f9f1e6a11"
	idDef = "8f1c3e55-66a0-4b7e-8d7e-1a2b3c4d5e6f"
	idCr  = "0c9a7b6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
)

func TestParseWUAList(t *testing.T) {
	out, err := parseWUAOutput(readTestdata(t, "wua-list.txt"), "")
	if err != nil {
		t.Fatal(err)
	}
	if !out.RebootRequired || len(out.Updates) != 3 {
		t.Fatalf("output = %+v", out)
	}
	// A lone KB or classification (unrolled by ConvertTo-Json) reads as a list of one.
	if d := out.Updates[1]; !reflect.DeepEqual([]string(d.KB), []string{"KB2267602"}) || !reflect.DeepEqual([]string(d.Classifications), []string{"Definition Updates"}) {
		t.Errorf("definition update = %+v", d)
	}
	all := wuaUpdates(out.Updates, nil)
	want := []update{
		{ID: idCU, Name: "KB5034123", Title: "2024-01 Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB5034123)",
			To: "revision 201", Repo: "Windows Update", Categories: "Security Updates", Security: true, Restart: true},
		{ID: idDef, Name: "KB2267602", Title: "Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 (Version 1.403.1234.0)",
			To: "revision 1", Repo: "Windows Update", Categories: "Definition Updates"},
		{ID: idCr, Name: idCr, Title: "2024-01 Update for Windows 11 (KB5034000)", To: "revision 3", Repo: "Windows Update", Categories: "Critical Updates"},
	}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("updates =\n%+v\nwant\n%+v", all, want)
	}
	cats, err := parseCategories("security, Critical,security")
	if err != nil {
		t.Fatal(err)
	}
	if got := wuaUpdates(out.Updates, cats); len(got) != 2 || got[0].ID != idCU || got[1].ID != idCr {
		t.Errorf("security,critical = %+v", got)
	}
	// security_only keeps the security update (choose filters on Security).
	if got, _ := choose(all, options{securityOnly: true}); len(got) != 1 || got[0].Name != "KB5034123" {
		t.Errorf("security_only = %+v", got)
	}
	if got, ex := choose(all, options{exclude: []string{"kb2267602"}}); len(got) != 2 || !reflect.DeepEqual(ex, []string{"KB2267602"}) {
		t.Errorf("exclude KB2267602 = %+v, %q", got, ex)
	}
}

// The script escapes non-ASCII characters (titles in other languages).
func TestParseWUAEscapedTitle(t *testing.T) {
	out, err := parseWUAOutput(`PATCHBAY-WUA {"updates":{"id":"`+idCU+`","revision":1,"title":"Kumulatives Update f\u00fcr Windows \ud83d\ude00","kb":"KB1","classifications":"Updates","severity":"","reboot_behavior":0},"reboot_required":false}`, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Updates) != 1 || out.Updates[0].Title != "Kumulatives Update für Windows 😀" {
		t.Errorf("updates = %+v", out.Updates)
	}
}

func TestParseWUAOutputErrors(t *testing.T) {
	for _, tc := range []struct {
		name, stdout, stderr string
		want                 string
	}{
		{"nothing", "", "", `printed no result line ("PATCHBAY-WUA"); it printed: nothing`},
		{"powershell error", "", "New-Object : Retrieving the COM class factory failed\r\n", "it printed: New-Object : Retrieving the COM class factory failed"},
		{"truncated JSON", `PATCHBAY-WUA {"updates":[{"id":"` + idCU + `"`, "", "result is not the JSON expected"},
		{"not JSON", "PATCHBAY-WUA Exception calling Search", "", "result is not the JSON expected"},
		{"unknown field", `PATCHBAY-WUA {"updatez":[]}`, "", `unknown field "updatez"`},
		{"wrong type", `PATCHBAY-WUA {"updates":[{"id":"` + idCU + `","revision":"x"}]}`, "", "result is not the JSON expected"},
		{"agent error", `PATCHBAY-WUA {"error":"Exception from HRESULT: 0x8024402C","hresult":-2145107924}`, "",
			"windowsupdate: Windows Update Agent: Exception from HRESULT: 0x8024402C (0x8024402C)"},
		{"not a GUID", `PATCHBAY-WUA {"updates":[{"id":"'; Remove-Item C:\\ ;'"}]}`, "", "not a GUID"},
	} {
		_, err := parseWUAOutput(tc.stdout, tc.stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestWUAInstallOutcome(t *testing.T) {
	res, err := parseWUAOutput(readTestdata(t, "wua-install-mixed.txt"), "")
	if err != nil {
		t.Fatal(err)
	}
	ups := []update{{ID: idCU, Name: "KB5034123"}, {ID: idCr, Name: idCr}}
	r, err := wuaInstallOutcome(res, ups, &sdk.Output{})
	if err == nil || !strings.Contains(err.Error(), idCr+": failed (0x80240017)") || strings.Contains(err.Error(), "KB5034123") {
		t.Errorf("mixed result error = %v", err)
	}
	if !r.Reboot || r.RebootReason == "" {
		t.Errorf("mixed result = %+v, want a reboot", r)
	}
	ok := wuaOutput{Installed: oneOrMany[wuaResult]{{ID: idCU, ResultCode: wuaSucceeded}}}
	if r, err := wuaInstallOutcome(ok, ups[:1], &sdk.Output{}); err != nil || r.Reboot {
		t.Errorf("success = %+v, %v", r, err)
	}
	if _, err := wuaInstallOutcome(wuaOutput{}, ups[:1], &sdk.Output{}); err == nil || !strings.Contains(err.Error(), "no longer offered") {
		t.Errorf("nothing installed: %v", err)
	}
}

func TestWUAScriptAndArgs(t *testing.T) {
	s, err := wuaScriptFor("install", []string{idCU, idCr})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "$Mode = 'install'\n$Ids = @('"+idCU+"','"+idCr+"')\n") || !strings.Contains(s, "CreateUpdateInstaller") {
		t.Errorf("script starts %q", s[:120])
	}
	if _, err := wuaScriptFor("install", []string{"x'); Remove-Item C:\\ -Recurse; ('"}); err == nil {
		t.Error("a non-GUID ID reached the script")
	}
	args, err := wuaArgs("list", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(args[:5], []string{"-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand"}) {
		t.Errorf("args = %q", args[:5])
	}
	raw, err := base64.StdEncoding.DecodeString(args[5])
	if err != nil || len(raw)%2 != 0 {
		t.Fatalf("encoded command: %v", err)
	}
	u := make([]uint16, len(raw)/2)
	for i := range u {
		u[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
	}
	if got := string(utf16.Decode(u)); !strings.HasPrefix(got, "$Mode = 'list'\n$Ids = @()\n# Windows Update") {
		t.Errorf("decoded command starts %q", got[:60])
	}
	// The value PowerShell's documentation method gives
	// ([Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes(...))).
	if got := encodeCommand("Write-Output 1"); got != "VwByAGkAdABlAC0ATwB1AHQAcAB1AHQAIAAxAA==" {
		t.Errorf("encodeCommand = %s", got)
	}
	many := make([]string, 400)
	for i := range many {
		many[i] = idCU
	}
	if _, err := wuaArgs("install", many[:100]); err != nil {
		t.Errorf("100 updates: %v", err)
	}
	if _, err := wuaArgs("install", many); err == nil || !strings.Contains(err.Error(), "install fewer at once") {
		t.Errorf("400 updates: %v", err)
	}
}

func TestCategoriesParam(t *testing.T) {
	if _, err := parseCategories("security,bogus"); err == nil || !strings.Contains(err.Error(), `categories: unknown "bogus"`) {
		t.Errorf("bogus category: %v", err)
	}
	o, err := parseOptions(sdk.Params{"categories": "critical"})
	if err != nil || !reflect.DeepEqual(o.categories, []string{"Critical Updates"}) {
		t.Errorf("parseOptions categories = %q, %v", o.categories, err)
	}
	if err := checkCategories(aptBackend{}, o); err == nil || !strings.Contains(err.Error(), "only the windowsupdate manager") {
		t.Errorf("categories with apt: %v", err)
	}
	if err := checkCategories(windowsUpdateBackend{}, o); err != nil {
		t.Errorf("categories with windowsupdate: %v", err)
	}
}
