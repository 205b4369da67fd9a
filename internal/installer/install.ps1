# Patchbay agent installer for Windows. A relay serves it at
# /install/windows.ps1; the one-line installer printed by
# "patchbay agents installer --os windows" downloads it, checks its SHA-256
# against the one the line carries, and only then runs it (as Administrator):
#
#   $env:PATCHBAY_ENROLL_TOKEN='pbe_...'
#   powershell -NoProfile -ExecutionPolicy Bypass -File install.ps1 -Server https://RELAY:PORT `
#       -CAFingerprint sha256:HEX -Version VERSION -SHA256 HEX [-Arch amd64|arm64] [-NoStart]
#
# It downloads patchbay-agent_VERSION_windows_ARCH.exe from the relay's
# /releases/, checks its SHA-256 against -SHA256 (from the release's signed
# SHA256SUMS) BEFORE running it, then runs
# "patchbay-agent service install --copy-binary": the agent enrolls with the
# token (pinning the relay's CA by -CAFingerprint), copies itself to
# C:\Program Files\Patchbay, creates the "patchbay-agent" service (automatic,
# restarted on failure) and starts it.
#
# TLS: the downloads do not verify the relay's certificate (its CA is
# private); they carry no secret and every byte is checked against a hash from
# the technician's own command line. The token travels only inside the
# agent's enrollment, over TLS pinned to the CA fingerprint.
param(
	[Parameter(Mandatory = $true)][string]$Server,
	[Parameter(Mandatory = $true)][string]$CAFingerprint,
	[Parameter(Mandatory = $true)][string]$Version,
	[Parameter(Mandatory = $true)][string]$SHA256,
	[string]$Arch = '',
	[switch]$NoStart
)
$ErrorActionPreference = 'Stop'

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
	throw 'patchbay install: run this in an Administrator PowerShell'
}
if (-not $env:PATCHBAY_ENROLL_TOKEN) {
	throw 'patchbay install: no enrollment token in PATCHBAY_ENROLL_TOKEN (use the line patchbay agents installer prints)'
}
$here = switch ($env:PROCESSOR_ARCHITECTURE) { 'AMD64' { 'amd64' } 'ARM64' { 'arm64' } default { $env:PROCESSOR_ARCHITECTURE } }
if (-not $Arch) { $Arch = $here }
if ($Arch -ne $here) {
	throw "patchbay install: this machine is $here, the installer line is for ${Arch}: make one with patchbay agents installer --os windows --arch $here"
}

$name = "patchbay-agent_${Version}_windows_${Arch}.exe"
$url = "$Server/releases/$Version/$name"
$tmp = Join-Path ([IO.Path]::GetTempPath()) ('patchbay-install-' + [guid]::NewGuid())
New-Item -ItemType Directory -Path $tmp | Out-Null
try {
	$exe = Join-Path $tmp $name
	Write-Host "patchbay install: downloading $url"
	if ($PSVersionTable.PSVersion.Major -ge 6) {
		Invoke-WebRequest -UseBasicParsing -SkipCertificateCheck -Uri $url -OutFile $exe
	} else {
		[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor 3072
		[Net.ServicePointManager]::ServerCertificateValidationCallback = { $true }
		Invoke-WebRequest -UseBasicParsing -Uri $url -OutFile $exe
	}
	$got = (Get-FileHash -Algorithm SHA256 -Path $exe).Hash.ToLowerInvariant()
	if ($got -ne $SHA256.ToLowerInvariant()) {
		throw "patchbay install: $name from the relay has SHA-256 $got, but the signed release manifest says ${SHA256}: refusing to run it, nothing was installed"
	}
	$agentArgs = @('service', 'install', '--copy-binary', '--server', $Server, '--ca-fingerprint', $CAFingerprint)
	if ($NoStart) { $agentArgs += '--no-start' }
	# The token reaches the agent in PATCHBAY_ENROLL_TOKEN, not on its command line.
	& $exe @agentArgs
	if ($LASTEXITCODE -ne 0) { throw "patchbay install: patchbay-agent service install failed (exit code $LASTEXITCODE)" }
} finally {
	Remove-Item -Recurse -Force -Path $tmp -ErrorAction SilentlyContinue
}
