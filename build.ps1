#!/usr/bin/env pwsh
# ActorPool build script: a thin layer over `dotnet`. Exit codes pass through.
#
#   dotnet tool restore && dotnet pwsh ./build.ps1 demo [--workers N] [--unit SECONDS]
#   dotnet tool restore && dotnet pwsh ./build.ps1 test
#   dotnet pwsh ./build.ps1 node [--config FILE] [--seed-nodes ADDRESS] ...   (a standalone worker node)
#   dotnet pwsh ./build.ps1 soak [--minutes M] [--kill-every SECONDS] [--workers N]   (the chaos run)
#   dotnet pwsh ./build.ps1 pack    (the NuGet packages ActorPool, ActorPool.Hosting and the ActorPool.Node tool, into artifacts/packages)
#   dotnet pwsh ./build.ps1 build | bench [args] | clean
#   Build flavour: ACTORPOOL_CONFIGURATION=Debug (default Release).
#
# No PowerShell parameters on purpose: PowerShell would bind the programs' own options to them by prefix (--config
# to -Configuration, -r to -Rest). The first argument is the target; every other argument goes, as typed, to the
# program the target runs (demo, node, bench, soak).
$Targets = @('build', 'test', 'demo', 'node', 'bench', 'soak', 'pack', 'clean')
$Target = if ($args.Count -gt 0) { [string]$args[0] } else { 'build' }
if ($Targets -notcontains $Target) {
    [Console]::Error.WriteLine("build.ps1: unknown target '$Target'. Targets: $($Targets -join ', ').")
    exit 2
}
$Rest = @($args | Select-Object -Skip 1 | ForEach-Object { [string]$_ })
$Configuration = if ($env:ACTORPOOL_CONFIGURATION) { $env:ACTORPOOL_CONFIGURATION } else { 'Release' }
if (@('Debug', 'Release') -notcontains $Configuration) {
    [Console]::Error.WriteLine("build.ps1: ACTORPOOL_CONFIGURATION must be Debug or Release, not '$Configuration'.")
    exit 2
}

$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'

function Invoke-Dotnet {
    & dotnet @args
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

# Publishes an application ReadyToRun (precompiled: worker start-up is about 40% faster here; spawned workers run
# the same precompiled assemblies) and returns its folder. Without the crossgen package it falls back to a plain build.
function Publish-App([string] $Project, [string] $Out) {
    # Several of these scripts may start at once (a coordinator and its nodes in three terminals): one builds at a time.
    New-Item -ItemType Directory -Force artifacts | Out-Null
    $lock = $null
    while ($null -eq $lock) {
        try { $lock = [System.IO.File]::Open((Join-Path $PSScriptRoot 'artifacts/.build-lock'), 'OpenOrCreate', 'ReadWrite', 'None') }
        catch [System.IO.IOException] { Start-Sleep -Milliseconds 250 }
    }
    try { return Publish-AppUnlocked $Project $Out } finally { $lock.Dispose() }
}

# What a published app is built from: every source, project and configuration file (not bin/obj), as a stamp of
# their count and newest write time. An app whose stamp matches is not published again.
function Get-InputStamp {
    $files = @(Get-ChildItem -Path src, tests, hocon -Recurse -File -Include *.cs, *.csproj, *.props, *.conf, *.json, *.py -ErrorAction SilentlyContinue |
        Where-Object { $_.FullName -notmatch '[\\/](bin|obj)[\\/]' })
    $files += @(Get-Item Directory.Build.props, Directory.Packages.props, global.json -ErrorAction SilentlyContinue)
    $newest = ($files | Measure-Object -Property LastWriteTimeUtc -Maximum).Maximum
    return "$Configuration $($files.Count) $($newest.Ticks)"
}

function Publish-AppUnlocked([string] $Project, [string] $Out) {
    $stampFile = Join-Path $Out '.published-from'
    $stamp = Get-InputStamp
    $name = [System.IO.Path]::GetFileNameWithoutExtension($Project)
    if ((Test-Path $stampFile) -and (Get-Content -Raw $stampFile).Trim() -eq $stamp) { return $Out }
    [Console]::Error.WriteLine("build.ps1: building $name ($Configuration, ReadyToRun) into $Out; the first time this takes a few minutes...")
    $rid = [System.Runtime.InteropServices.RuntimeInformation]::RuntimeIdentifier
    & dotnet publish $Project -c $Configuration -r $rid --self-contained false -p:PublishReadyToRun=true -o $Out --nologo -v quiet | Out-Host
    if ($LASTEXITCODE -eq 0) {
        Set-Content -NoNewline -Path $stampFile -Value $stamp
        return $Out
    }
    Write-Warning 'ReadyToRun publish failed; running a plain build instead.'
    & dotnet build $Project -c $Configuration --nologo -v quiet | Out-Host
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    return Join-Path ([System.IO.Path]::GetDirectoryName($Project)) "bin/$Configuration/net10.0"
}

# The projects that are NuGet packages (every other one has IsPackable=false); they pack to artifacts/packages.
$Packages = @('src/ActorPool/ActorPool.csproj', 'src/ActorPool.Hosting/ActorPool.Hosting.csproj', 'src/ActorPool.Node/ActorPool.Node.csproj')

switch ($Target) {
    'build' {
        Invoke-Dotnet build ActorPool.sln -c $Configuration
    }
    'test' {
        Invoke-Dotnet build ActorPool.sln -c $Configuration
        # The package test installs the packages into a new application, as a user would: pack what was just built.
        # Only the packable projects pack; the packages go to artifacts/packages (PackageOutputPath).
        Invoke-Dotnet pack ActorPool.sln -c $Configuration --no-build --nologo
        # A hung test is a failure, not a stuck build: the blame collector ends it (and its processes) after 5 minutes.
        # (They run as built, not ReadyToRun: precompiling them would save a third of their CPU but cost more time than
        # that on a fresh clone.)
        Invoke-Dotnet test ActorPool.sln -c $Configuration --no-build --blame-hang-timeout 5m `
            --logger 'console;verbosity=normal' --results-directory artifacts/test-results
    }
    'demo' {
        $dir = Publish-App src/ActorPool.Demo/ActorPool.Demo.csproj artifacts/demo
        & dotnet "$dir/ActorPool.Demo.dll" @Rest
        exit $LASTEXITCODE
    }
    'node' {
        $dir = Publish-App src/ActorPool.Node/ActorPool.Node.csproj artifacts/node
        & dotnet "$dir/ActorPool.Node.dll" @Rest
        exit $LASTEXITCODE
    }
    'bench' {
        $dir = Publish-App tests/ActorPool.Benchmarks/ActorPool.Benchmarks.csproj artifacts/bench-app
        & dotnet "$dir/ActorPool.Benchmarks.dll" @Rest
        exit $LASTEXITCODE
    }
    'soak' {
        $dir = Publish-App tests/ActorPool.Soak/ActorPool.Soak.csproj artifacts/soak
        & dotnet "$dir/ActorPool.Soak.dll" @Rest
        exit $LASTEXITCODE
    }
    'pack' {
        foreach ($project in $Packages) { Invoke-Dotnet pack $project -c $Configuration --nologo }
        Write-Host "Packages in $(Join-Path $PSScriptRoot 'artifacts/packages')"
    }
    'clean' {
        Invoke-Dotnet clean ActorPool.sln -c $Configuration
        if (Test-Path artifacts) { Remove-Item -Recurse -Force artifacts }
    }
}
exit 0
