#!/usr/bin/env pwsh
# ActorPool build script: a thin layer over `dotnet`. Exit codes pass through.
#
#   dotnet tool restore && dotnet pwsh ./build.ps1 demo [--workers N] [--unit SECONDS]
#   dotnet tool restore && dotnet pwsh ./build.ps1 test
#   dotnet pwsh ./build.ps1 build | bench [args] | pack | clean
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'demo', 'bench', 'pack', 'clean')]
    [string] $Target = 'build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Everything else goes to the program the target runs (demo, bench).
    [Parameter(ValueFromRemainingArguments = $true)]
    [string[]] $Rest = @()
)

$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'

function Invoke-Dotnet {
    & dotnet @args
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

switch ($Target) {
    'build' {
        Invoke-Dotnet build ActorPool.sln -c $Configuration
    }
    'test' {
        Invoke-Dotnet build ActorPool.sln -c $Configuration
        # A hung test is a failure, not a stuck build: the blame collector ends it (and its processes) after 5 minutes.
        Invoke-Dotnet test ActorPool.sln -c $Configuration --no-build --blame-hang-timeout 5m `
            --logger 'console;verbosity=normal' --results-directory artifacts/test-results
    }
    'demo' {
        # ReadyToRun (precompiled) cuts worker start-up by about 40% here; spawned workers run the same
        # precompiled assemblies. Without the crossgen package the demo falls back to a plain build.
        $rid = [System.Runtime.InteropServices.RuntimeInformation]::RuntimeIdentifier
        $out = 'artifacts/demo'
        & dotnet publish src/ActorPool.Demo/ActorPool.Demo.csproj -c $Configuration -r $rid --self-contained false `
            -p:PublishReadyToRun=true -o $out --nologo -v quiet
        if ($LASTEXITCODE -ne 0) {
            Write-Warning 'ReadyToRun publish failed; running a plain build instead.'
            Invoke-Dotnet build src/ActorPool.Demo/ActorPool.Demo.csproj -c $Configuration
            $out = "src/ActorPool.Demo/bin/$Configuration/net10.0"
        }
        & dotnet "$out/ActorPool.Demo.dll" @Rest
        exit $LASTEXITCODE
    }
    'bench' {
        $project = 'tests/ActorPool.Benchmarks/ActorPool.Benchmarks.csproj'
        if (-not (Test-Path $project)) {
            Write-Error "The benchmark ($project) is not part of this version yet."
            exit 1
        }
        Invoke-Dotnet build $project -c Release
        & dotnet "tests/ActorPool.Benchmarks/bin/Release/net10.0/ActorPool.Benchmarks.dll" @Rest
        exit $LASTEXITCODE
    }
    'pack' {
        Invoke-Dotnet pack src/ActorPool/ActorPool.csproj -c $Configuration -o artifacts/packages
    }
    'clean' {
        Invoke-Dotnet clean ActorPool.sln -c $Configuration
        if (Test-Path artifacts) { Remove-Item -Recurse -Force artifacts }
    }
}
exit 0
