# patchbay:begin
# name: clear-print-queue
# version: 1.0.0
# description: Clear stuck print jobs: stop the Print Spooler, delete its spool files, start it again
# os: windows
# shell: powershell
# timeout: 5m
# needs_consent: true
# check: true
# patchbay:end
#
# Check mode counts the spool files and exits 10 when there are any.
# Fix mode deletes only spool files (*.SPL, *.SHD) from the spooler's
# directory, and starts the spooler again only if it was running: a spooler
# that was stopped or disabled (as some hardening guides advise) stays so.
# Every queued job on every printer is lost: that is why it asks for consent.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$spool = Join-Path $env:SystemRoot 'System32\spool\PRINTERS'
$configured = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\Print\Printers' `
    -Name DefaultSpoolDirectory -ErrorAction SilentlyContinue
if ($configured -and $configured.DefaultSpoolDirectory) {
    $spool = [Environment]::ExpandEnvironmentVariables($configured.DefaultSpoolDirectory)
}
# Never point the deletion at a drive root or the Windows directory itself.
$full = [IO.Path]::GetFullPath($spool).TrimEnd('\')
if ($full.Length -le 3 -or $full -ieq $env:SystemRoot.TrimEnd('\')) {
    Write-Error "refusing to clear the spool directory '$full'"
    exit 1
}

function Get-SpoolFile {
    if (-not (Test-Path -LiteralPath $full -PathType Container)) { return @() }
    @(Get-ChildItem -LiteralPath $full -File -Force |
        Where-Object { $_.Extension -in '.spl', '.shd' })
}

$files = @(Get-SpoolFile)
if ($env:PATCHBAY_MODE -eq 'check') {
    if ($files.Count -gt 0) {
        Write-Output "$($files.Count) spool files in $full"
        exit 10
    }
    Write-Output "the print queue is empty ($full)"
    exit 0
}
if ($files.Count -eq 0) {
    Write-Output "the print queue is empty ($full): nothing to clear"
    Write-Output 'patchbay:unchanged'
    exit 0
}

$svc = Get-Service -Name Spooler
$wasRunning = $svc.Status -eq 'Running'
# Stop-Service -Force also stops the services that depend on the spooler:
# remember the running ones to start them again.
$dependents = @($svc.DependentServices | Where-Object { $_.Status -eq 'Running' })
if ($wasRunning) {
    Write-Output 'stopping the Print Spooler'
    Stop-Service -Name Spooler -Force
    $svc.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(60))
}
try {
    $files = @(Get-SpoolFile)
    foreach ($f in $files) {
        Remove-Item -LiteralPath $f.FullName -Force
    }
    Write-Output "deleted $($files.Count) spool files from $full"
} finally {
    if ($wasRunning) {
        Write-Output 'starting the Print Spooler'
        Start-Service -Name Spooler
        foreach ($d in $dependents) {
            Start-Service -Name $d.Name -ErrorAction Continue
        }
    }
}
if ($wasRunning) {
    $svc.Refresh()
    $svc.WaitForStatus('Running', [TimeSpan]::FromSeconds(60))
    Write-Output "cleared the print queue ($($files.Count) spool files); the Print Spooler is running"
} else {
    Write-Output "cleared the print queue ($($files.Count) spool files); the Print Spooler was not running and was left stopped"
}
