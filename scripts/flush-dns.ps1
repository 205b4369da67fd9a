# patchbay:begin
# name: flush-dns-windows
# version: 1.0.0
# description: Flush the Windows DNS client cache (Clear-DnsClientCache, or ipconfig /flushdns where that cmdlet is missing)
# os: windows
# shell: powershell
# timeout: 1m
# patchbay:end
#
# The Windows twin of flush-dns.sh. Needs the DNS Client service (Dnscache)
# running, as it is by default.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$svc = Get-Service -Name Dnscache -ErrorAction SilentlyContinue
if ($null -eq $svc -or $svc.Status -ne 'Running') {
    Write-Output 'the DNS Client service (Dnscache) is not running: there is no cache to flush'
    Write-Output 'patchbay:unchanged'
    exit 0
}

if (Get-Command -Name Clear-DnsClientCache -ErrorAction SilentlyContinue) {
    $entries = @(Get-DnsClientCache -ErrorAction SilentlyContinue).Count
    Clear-DnsClientCache
    Write-Output "cleared the DNS client cache ($entries entries)"
} else {
    $out = & ipconfig.exe /flushdns 2>&1
    if ($LASTEXITCODE -ne 0) {
        $out | ForEach-Object { Write-Output "$_" }
        Write-Error "ipconfig /flushdns failed with exit code $LASTEXITCODE"
        exit 1
    }
    Write-Output 'flushed the DNS resolver cache (ipconfig /flushdns)'
}
