# patchbay:begin
# name: reset-windows-update
# version: 1.0.0
# description: Reset Windows Update: stop its services, rename SoftwareDistribution and catroot2 (kept as backups), start the services again
# os: windows
# shell: powershell
# timeout: 15m
# param: keep_backups int default=1 -- backups from earlier runs to keep (older ones are deleted; this run's is always kept)
# patchbay:end
#
# The classic fix for updates that fail to download or install. The old
# folders are renamed to <name>.patchbay-<timestamp>, not deleted, and
# Windows rebuilds them on the next update scan (the update history shown
# in Settings starts again; installed updates are not affected). Services
# are put back as they were: those that were running are started again.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$keep = 1
if ($env:PATCHBAY_PARAM_KEEP_BACKUPS) { $keep = [int]$env:PATCHBAY_PARAM_KEEP_BACKUPS }
if ($keep -lt 0) {
    Write-Error "keep_backups must be 0 or more, not $keep"
    exit 2
}

$serviceNames = 'wuauserv', 'bits', 'cryptsvc'
$folders = @(
    (Join-Path $env:SystemRoot 'SoftwareDistribution'),
    (Join-Path $env:SystemRoot 'System32\catroot2')
)
$stamp = Get-Date -Format 'yyyyMMddHHmmss'

$running = @(Get-Service -Name $serviceNames | Where-Object { $_.Status -eq 'Running' } |
    ForEach-Object { $_.Name })

function Stop-UpdateService {
    foreach ($name in $serviceNames) {
        $s = Get-Service -Name $name
        if ($s.Status -ne 'Stopped') {
            Write-Output "stopping $name"
            Stop-Service -Name $name -Force
            $s.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(120))
        }
    }
}

$renamed = @()
try {
    foreach ($folder in $folders) {
        if (-not (Test-Path -LiteralPath $folder -PathType Container)) {
            Write-Output "$folder does not exist: nothing to rename"
            continue
        }
        $newName = '{0}.patchbay-{1}' -f (Split-Path -Leaf $folder), $stamp
        # The Update Orchestrator can start wuauserv again at any moment:
        # stop the services and retry a few times.
        for ($try = 1; ; $try++) {
            Stop-UpdateService
            try {
                Rename-Item -LiteralPath $folder -NewName $newName
                break
            } catch {
                if ($try -ge 5) { throw "could not rename ${folder}: $($_.Exception.Message)" }
                Write-Output "  $folder is still in use, retrying"
                Start-Sleep -Seconds 3
            }
        }
        Write-Output "renamed $folder to $newName"
        $renamed += Join-Path (Split-Path -Parent $folder) $newName
    }
} finally {
    foreach ($name in $running) {
        Write-Output "starting $name"
        Start-Service -Name $name -ErrorAction Continue
    }
}

# Old backups of earlier runs, newest first; delete those beyond $keep.
foreach ($folder in $folders) {
    $parent = Split-Path -Parent $folder
    $leaf = Split-Path -Leaf $folder
    $old = @(Get-ChildItem -LiteralPath $parent -Directory -Force -Filter "$leaf.patchbay-*" |
        Where-Object { $_.Name -match '\.patchbay-\d{14}$' -and $renamed -notcontains $_.FullName } |
        Sort-Object Name -Descending)
    foreach ($d in ($old | Select-Object -Skip $keep)) {
        try {
            Remove-Item -LiteralPath $d.FullName -Recurse -Force
            Write-Output "deleted the old backup $($d.FullName)"
        } catch {
            Write-Output "could not delete the old backup $($d.FullName): $($_.Exception.Message)"
        }
    }
}

if ($renamed.Count -eq 0) {
    Write-Output 'nothing was renamed'
    Write-Output 'patchbay:unchanged'
    exit 0
}
Write-Output "reset Windows Update; backups: $($renamed -join ', ')"
