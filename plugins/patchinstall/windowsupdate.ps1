# Windows Update through the Windows Update Agent COM API, for the
# patchinstall plugin (windowsupdate.go). The plugin sets $Mode ('list' or
# 'install') and $Ids (the UpdateIDs to install) above this text and runs
# it with powershell.exe -EncodedCommand. It prints one line
# "PATCHBAY-WUA <json>"; anything else it prints is ignored.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# The JSON is made ASCII (\uXXXX escapes), so the console code page that
# PowerShell 5.1 writes redirected output in cannot garble update titles.
function Out-Result($o) {
  $json = ConvertTo-Json -InputObject $o -Depth 6 -Compress
  $ascii = [regex]::Replace($json, '[^\x00-\x7F]', [Text.RegularExpressions.MatchEvaluator]{ param($m) '\u{0:x4}' -f [int]$m.Value[0] })
  Write-Output ('PATCHBAY-WUA ' + $ascii)
}
function Describe($u) {
  $kbs = @(); foreach ($k in $u.KBArticleIDs) { $kbs += 'KB' + $k }
  $cls = @(); foreach ($c in $u.Categories) { if ($c.Type -eq 'UpdateClassification') { $cls += [string]$c.Name } }
  [ordered]@{ id = [string]$u.Identity.UpdateID; revision = [int]$u.Identity.RevisionNumber; title = [string]$u.Title
    kb = $kbs; classifications = $cls; severity = [string]$u.MsrcSeverity
    reboot_behavior = [int]$u.InstallationBehavior.RebootBehavior }
}
try {
  $session = New-Object -ComObject Microsoft.Update.Session
  $session.ClientApplicationID = 'patchbay patchinstall'
  $found = $session.CreateUpdateSearcher().Search("IsInstalled=0 and Type='Software' and IsHidden=0")
  $pending = (New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired
  if ($Mode -eq 'list') {
    $list = @(); foreach ($u in $found.Updates) { $list += ,(Describe $u) }
    Out-Result ([ordered]@{ updates = $list; reboot_required = [bool]$pending })
    exit 0
  }
  $coll = New-Object -ComObject Microsoft.Update.UpdateColl
  foreach ($u in $found.Updates) {
    if ($Ids -contains [string]$u.Identity.UpdateID) {
      if (-not $u.EulaAccepted) { $u.AcceptEula() }
      [void]$coll.Add($u)
    }
  }
  $results = @()
  if ($coll.Count -eq 0) {
    Out-Result ([ordered]@{ installed = $results; result_code = 2; hresult = 0; reboot_required = [bool]$pending })
    exit 0
  }
  $dl = $session.CreateUpdateDownloader(); $dl.Updates = $coll
  $dres = $dl.Download()
  $inst = $session.CreateUpdateInstaller(); $inst.Updates = $coll
  try { $inst.ForceQuiet = $true } catch { }
  $ires = $inst.Install()
  for ($i = 0; $i -lt $coll.Count; $i++) {
    $r = $ires.GetUpdateResult($i)
    $results += ,([ordered]@{ id = [string]$coll.Item($i).Identity.UpdateID; result_code = [int]$r.ResultCode
      hresult = [int64]$r.HResult; reboot_required = [bool]$r.RebootRequired })
  }
  Out-Result ([ordered]@{ installed = $results; result_code = [int]$ires.ResultCode; hresult = [int64]$ires.HResult
    download_result_code = [int]$dres.ResultCode
    reboot_required = ([bool]$ires.RebootRequired -or [bool](New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired) })
} catch {
  Out-Result ([ordered]@{ error = [string]$_.Exception.Message; hresult = [int64]$_.Exception.HResult })
  exit 1
}
