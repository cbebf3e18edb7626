# Installs docker-image-pusher from a GitHub release on Windows (x86_64; Windows on Arm runs it
# under x64 emulation).
#
#   .\install.ps1                  # the latest release
#   .\install.ps1 v0.3.0           # a pinned version ("0.3.0" works too)
#   irm <releases>/latest/download/install.ps1 | iex     # the latest release
#
# Environment:
#   INSTALL_DIR                 where to install (default: %LOCALAPPDATA%\Programs\docker-image-pusher)
#   DOCKER_PUSHER_RELEASE_BASE  the releases URL (default: https://github.com/$Repo/releases);
#                               assets are fetched from <base>/latest/download/<asset> or
#                               <base>/download/<version>/<asset>
#
# It downloads docker-image-pusher-x86_64-pc-windows-msvc.exe and SHA256SUMS, checks the binary's
# SHA-256 against SHA256SUMS and installs nothing on a mismatch, then installs it as
# $INSTALL_DIR\docker-image-pusher.exe.
#
# Errors are thrown rather than ending with `exit`, so a failure under `iex` does not close the
# caller's PowerShell window; `$args` is read instead of a param() block for the same reason.

$ErrorActionPreference = "Stop"
# Windows PowerShell 5.1 downloads many times slower while it draws a progress bar.
$ProgressPreference = "SilentlyContinue"

# The GitHub repository (owner/name) that publishes the releases.
$Repo = "docker-image-pusher/docker-image-pusher"
$Name = "docker-image-pusher"
$Asset = "$Name-x86_64-pc-windows-msvc.exe"

function Fail([string]$Message) {
  throw "install.ps1: error: $Message"
}

if ($args.Count -gt 1) { Fail "too many arguments: $args (usage: install.ps1 [VERSION])" }
$Version = "latest"
if ($args.Count -eq 1) { $Version = [string]$args[0] }

if ($Version -match '^[0-9]') { $Version = "v$Version" }
if ($Version -ne "latest" -and $Version -notmatch '^v[0-9][A-Za-z0-9.+-]*$') {
  Fail "not a version: '$Version' (expected latest, v0.3.0 or 0.3.0)"
}

$Arch = $env:PROCESSOR_ARCHITECTURE
# A 32-bit PowerShell on 64-bit Windows reports x86 here and the real CPU in PROCESSOR_ARCHITEW6432.
if ($env:PROCESSOR_ARCHITEW6432) { $Arch = $env:PROCESSOR_ARCHITEW6432 }
if ($Arch -ne "AMD64" -and $Arch -ne "ARM64") {
  Fail "unsupported CPU architecture '$Arch': the Windows release binary is x86_64"
}

$Base = $env:DOCKER_PUSHER_RELEASE_BASE
if (-not $Base) { $Base = "https://github.com/$Repo/releases" }
$Base = $Base.TrimEnd("/")
if ($Version -eq "latest") { $Url = "$Base/latest/download" } else { $Url = "$Base/download/$Version" }

$InstallDir = $env:INSTALL_DIR
if (-not $InstallDir) { $InstallDir = Join-Path $env:LOCALAPPDATA "Programs\$Name" }
$InstallDir = [System.IO.Path]::GetFullPath($InstallDir).TrimEnd("\")

# Windows PowerShell 5.1 may default to TLS 1.0, which GitHub refuses.
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor
  [Net.SecurityProtocolType]::Tls12

$TempDir = Join-Path ([System.IO.Path]::GetTempPath()) ("$Name-" + [System.Guid]::NewGuid().ToString("N"))
New-Item -ItemType Directory -Path $TempDir | Out-Null
try {
  $Download = Join-Path $TempDir $Asset
  $Sums = Join-Path $TempDir "SHA256SUMS"
  Write-Host "downloading $Url/$Asset"
  try {
    Invoke-WebRequest -UseBasicParsing -Uri "$Url/$Asset" -OutFile $Download
  } catch {
    Fail "could not download $Url/$Asset (is there a $Version release with a Windows binary?); nothing was installed"
  }
  try {
    Invoke-WebRequest -UseBasicParsing -Uri "$Url/SHA256SUMS" -OutFile $Sums
  } catch {
    Fail "could not download $Url/SHA256SUMS; nothing was installed"
  }

  $Expected = $null
  foreach ($Line in Get-Content -LiteralPath $Sums) {
    $Fields = $Line.Trim() -split '\s+', 2
    if ($Fields.Count -eq 2 -and ($Fields[1] -eq $Asset -or $Fields[1] -eq "*$Asset")) {
      $Expected = $Fields[0].ToLowerInvariant()
      break
    }
  }
  if (-not $Expected) { Fail "$Url/SHA256SUMS has no entry for $Asset; nothing was installed" }
  $Actual = (Get-FileHash -Algorithm SHA256 -LiteralPath $Download).Hash.ToLowerInvariant()
  if ($Actual -ne $Expected) {
    Fail "checksum mismatch for ${Asset}: SHA256SUMS says $Expected but the download is $Actual; nothing was installed"
  }
  Write-Host "verified sha256 $Actual"

  New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
  $Dest = Join-Path $InstallDir "$Name.exe"
  $Staged = Join-Path $InstallDir ".$Name.$PID.tmp"
  try {
    Copy-Item -LiteralPath $Download -Destination $Staged -Force
    Move-Item -LiteralPath $Staged -Destination $Dest -Force
  } catch {
    Remove-Item -LiteralPath $Staged -Force -ErrorAction SilentlyContinue
    Fail "could not write $Dest (is it running? set INSTALL_DIR to a writable directory)"
  }
} finally {
  Remove-Item -LiteralPath $TempDir -Recurse -Force -ErrorAction SilentlyContinue
}

$Installed = $null
try { $Installed = (& $Dest --version 2>$null | Out-String).Trim() } catch { $Installed = $null }
if ($Installed) {
  Write-Host "installed $Name $Installed to $Dest"
} else {
  Write-Host "installed $Name ($Version) to $Dest"
  Write-Warning "$Dest --version did not run on this system"
}

$OnPath = ($env:PATH -split ";") | Where-Object { $_ -and $_.TrimEnd("\") -ieq $InstallDir }
if ($OnPath) {
  Write-Host "$InstallDir is on your PATH: run '$Name --help' to start"
} else {
  Write-Host "$InstallDir is not on your PATH; add it for your user with:"
  Write-Host "  [Environment]::SetEnvironmentVariable('Path', [Environment]::GetEnvironmentVariable('Path', 'User') + ';$InstallDir', 'User')"
}
