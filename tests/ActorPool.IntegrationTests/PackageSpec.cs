using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using ActorPool.IntegrationTests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ActorPool.IntegrationTests;

/// <summary>
/// The packages as a new user meets them: a new console application outside the repository, with nothing but a
/// nuget.config and a PackageReference to ActorPool, maps over a pool of spawned workers; the ActorPool.Node tool
/// installs and runs. The packages are the ones <c>build.ps1 pack</c> (or <c>build.ps1 test</c>) made.
/// </summary>
/// <remarks>
/// Each application restores into a packages folder of its own: the machine's global packages folder keeps a
/// package of a given version forever once it has installed it, so it would hand out an older ActorPool 0.1.0
/// than the one just packed. The machine's folder serves as a fallback folder instead (the Akka packages are
/// not fetched again), unless it already holds ActorPool of this version.
/// </remarks>
[Collection("programs")]
public sealed class PackageSpec
{
    private static readonly string Version = Metadata("ActorPool.PackageVersion");
    private static readonly string PackagesFolder = Path.GetFullPath(Metadata("ActorPool.PackageOutputPath"));
    private static readonly string RepositoryRoot = Path.GetFullPath(Metadata("ActorPool.RepositoryRoot"));
    private static readonly string DotnetRoot = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
    private static readonly string Dotnet = Path.Combine(DotnetRoot, "dotnet");
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(180);

    private readonly ITestOutputHelper _output;

    public PackageSpec(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task A_new_app_referencing_the_package_must_map_on_spawned_worker_processes()
    {
        var package = RequirePackage("ActorPool");
        using var folder = new TemporaryFolder();
        var clock = Stopwatch.StartNew();
        var environment = await WriteNuGetConfigAsync(folder.Path);
        var app = Directory.CreateDirectory(Path.Combine(folder.Path, "NewApp")).FullName;
        // What `dotnet new console` makes, and one package.
        File.WriteAllText(Path.Combine(app, "NewApp.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ActorPool" Version="{Version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using ActorPool;

            Console.WriteLine($"app pid {Environment.ProcessId}");
            await using var pool = new Pool(2);
            var results = await pool.MapAsync(x => $"{x * x} from pid {Environment.ProcessId}", new[] { 1, 2, 3, 4, 5, 6 });
            foreach (var result in results)
                Console.WriteLine($"result {result}");
            """);

        // No build servers: every process the build starts ends with it.
        await RunToEndAsync(Dotnet, ["build", "--nologo", "-v:minimal", "-nodeReuse:false", "-p:UseSharedCompilation=false"],
            environment, app, Long, "dotnet build");
        _output.WriteLine($"restore and build: {clock.Elapsed.TotalSeconds:F1} s");
        // The application was built against the package just packed, not one that some cache kept.
        var restored = Path.Combine(folder.Path, "packages", "actorpool", Version.ToLowerInvariant(), $"actorpool.{Version.ToLowerInvariant()}.nupkg.sha512");
        Assert.True(File.Exists(restored), $"ActorPool was not restored into the application's own packages folder ({restored}).");
        Assert.Equal(Convert.ToBase64String(SHA512.HashData(File.ReadAllBytes(package))), File.ReadAllText(restored).Trim());

        clock.Restart();
        var output = await RunToEndAsync(Dotnet, [Path.Combine(app, "bin", "Debug", "net10.0", "NewApp.dll")], environment, app, Short, "the application");
        _output.WriteLine($"run: {clock.Elapsed.TotalSeconds:F1} s\n{output}");

        var appPid = Regex.Match(output, @"^app pid (\d+)$", RegexOptions.Multiline);
        Assert.True(appPid.Success, $"the application did not print its pid:\n{output}");
        var results = Regex.Matches(output, @"^result (\d+) from pid (\d+)$", RegexOptions.Multiline);
        Assert.Equal(new[] { 1, 4, 9, 16, 25, 36 }, results.Select(m => int.Parse(m.Groups[1].Value)));
        var workerPids = results.Select(m => m.Groups[2].Value).ToHashSet();
        Assert.True(workerPids.All(pid => pid != appPid.Groups[1].Value),
            $"results computed in the application's own process (pid {appPid.Groups[1].Value}), not in spawned workers:\n{output}");
    }

    [Fact]
    public async Task The_node_package_must_install_as_the_actorpool_node_tool_and_run()
    {
        var package = RequirePackage("ActorPool.Node");
        using (var zip = ZipFile.OpenRead(package))
        {
            var settings = zip.Entries.SingleOrDefault(e => e.FullName.EndsWith("/DotnetToolSettings.xml", StringComparison.Ordinal));
            Assert.True(settings is not null, $"{package} is not a .NET tool package (no DotnetToolSettings.xml)");
            using var stream = settings.Open();
            var command = XDocument.Load(stream).Descendants("Command").Single();
            Assert.Equal("actorpool-node", (string?)command.Attribute("Name"));
            Assert.Equal("ActorPool.Node.dll", (string?)command.Attribute("EntryPoint"));
        }

        using var folder = new TemporaryFolder();
        var clock = Stopwatch.StartNew();
        var environment = await WriteNuGetConfigAsync(folder.Path);
        var tools = Path.Combine(folder.Path, "tools");
        await RunToEndAsync(Dotnet, ["tool", "install", "ActorPool.Node", "--version", Version, "--tool-path", tools,
            "--configfile", Path.Combine(folder.Path, "nuget.config")], environment, folder.Path, Long, "dotnet tool install");
        _output.WriteLine($"tool install: {clock.Elapsed.TotalSeconds:F1} s");

        clock.Restart();
        var help = await RunToEndAsync(Path.Combine(tools, "actorpool-node"), ["--help"],
            new Dictionary<string, string?>(environment) { ["DOTNET_ROOT"] = DotnetRoot }, folder.Path, Short, "actorpool-node --help");
        _output.WriteLine($"actorpool-node --help: {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Contains("--seed-nodes", help);
        Assert.Contains("--assembly", help);
    }

    private static string Metadata(string key) =>
        typeof(PackageSpec).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
        ?? throw new InvalidOperationException($"assembly metadata {key} is empty");

    /// <summary>The package file that <c>build.ps1 pack</c> made, or a failure that says how to make it.</summary>
    private static string RequirePackage(string id)
    {
        var path = Path.Combine(PackagesFolder, $"{id}.{Version}.nupkg");
        Assert.True(File.Exists(path),
            $"No {id} {Version} package in {PackagesFolder}. Make the packages first: `dotnet pwsh ./build.ps1 pack` " +
            "(`dotnet pwsh ./build.ps1 test` packs before it tests).");
        return path;
    }

    /// <summary>
    /// Writes <paramref name="folder"/>/nuget.config: the repository's packages (the only source for ActorPool*) and
    /// the registries this machine uses (for everything else), an own packages folder and the machine's as a
    /// fallback. Returns the environment for the processes that restore: no variable from this test run that would
    /// steer MSBuild or NuGet elsewhere.
    /// </summary>
    private async Task<IReadOnlyDictionary<string, string?>> WriteNuGetConfigAsync(string folder)
    {
        // Outside the repository: no Directory.Build.props, Directory.Packages.props, global.json or nuget.config of
        // the repository (or of any folder above) shapes the new application.
        Assert.False(folder.StartsWith(RepositoryRoot, StringComparison.Ordinal), $"{folder} is inside the repository {RepositoryRoot}");
        string[] inherited = ["Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "global.json",
            "nuget.config", "NuGet.config", "NuGet.Config"];
        var stray = Ancestors(folder).SelectMany(d => inherited.Select(f => Path.Combine(d, f))).Where(File.Exists).ToList();
        Assert.True(stray.Count == 0, $"files above {folder} would shape the new application: {string.Join(", ", stray)}");

        var environment = new Dictionary<string, string?>
        {
            ["DOTNET_CLI_UI_LANGUAGE"] = "en",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
            ["NUGET_FALLBACK_PACKAGES"] = null,
        };
        // The test runs inside `dotnet test`, whose MSBuild variables would point a nested build at its own state.
        foreach (var name in Environment.GetEnvironmentVariables().Keys.Cast<string>())
            if (name.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || name.StartsWith("_MSBUILD", StringComparison.OrdinalIgnoreCase))
                environment[name] = null;
        environment["MSBUILDDISABLENODEREUSE"] = "1";

        // The machine's own settings, read from the new folder before it has a nuget.config.
        var sourcesRun = RunToEndAsync(Dotnet, ["nuget", "list", "source", "--format", "Detailed"], environment, folder, Short, "dotnet nuget list source");
        var localsRun = RunToEndAsync(Dotnet, ["nuget", "locals", "global-packages", "--list"], environment, folder, Short, "dotnet nuget locals");
        var sourcesText = await sourcesRun;
        var sources = Regex.Matches(sourcesText, @"^\s*\d+\.\s+(?<name>\S.*?)\s+\[Enabled\]\s*\r?\n\s*(?<url>\S+)\s*$", RegexOptions.Multiline)
            .Select(m => (Name: m.Groups["name"].Value, Url: m.Groups["url"].Value)).ToList();
        Assert.True(sources.Count > 0, $"no enabled NuGet source on this machine (the Akka packages come from one):\n{sourcesText}");
        var machinePackages = Regex.Match(await localsRun, @"global-packages:\s*(\S.*?)\s*$", RegexOptions.Multiline).Groups[1].Value;

        const string local = "actorpool-packages";
        var ownPackages = Path.Combine(folder, "packages");
        var config = new XElement("configuration",
            new XElement("config", new XElement("add", new XAttribute("key", "globalPackagesFolder"), new XAttribute("value", ownPackages))),
            new XElement("packageSources",
                new XElement("clear"),
                new XElement("add", new XAttribute("key", local), new XAttribute("value", PackagesFolder)),
                sources.Select(s => new XElement("add", new XAttribute("key", s.Name), new XAttribute("value", s.Url)))),
            new XElement("packageSourceMapping",
                new XElement("packageSource", new XAttribute("key", local),
                    new XElement("package", new XAttribute("pattern", "ActorPool")),
                    new XElement("package", new XAttribute("pattern", "ActorPool.*"))),
                sources.Select(s => new XElement("packageSource", new XAttribute("key", s.Name),
                    new XElement("package", new XAttribute("pattern", "*"))))),
            new XElement("fallbackPackageFolders", new XElement("clear"),
                // A fallback folder that held an ActorPool package of this version would be used instead of the one just packed.
                machinePackages.Length > 0 && Directory.Exists(machinePackages)
                    && !new[] { "actorpool", "actorpool.hosting", "actorpool.node" }.Any(id => Directory.Exists(Path.Combine(machinePackages, id, Version.ToLowerInvariant())))
                    ? new XElement("add", new XAttribute("key", "machine"), new XAttribute("value", machinePackages))
                    : null));
        config.Save(Path.Combine(folder, "nuget.config"));
        _output.WriteLine(config.ToString());
        environment["NUGET_PACKAGES"] = ownPackages;
        return environment;
    }

    private static IEnumerable<string> Ancestors(string folder)
    {
        for (var d = Directory.GetParent(folder); d is not null; d = d.Parent)
            yield return d.FullName;
    }

    /// <summary>Runs a program to its end (bounded; ended with all it started otherwise), checks it succeeded, returns its output.</summary>
    private static async Task<string> RunToEndAsync(string fileName, string[] args, IReadOnlyDictionary<string, string?> environment,
        string workingDirectory, TimeSpan within, string what)
    {
        using var program = StartedProgram.Start(fileName, args, environment, workingDirectory);
        int exit;
        try
        {
            exit = await program.WaitForExitAsync(within);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{what} did not end within {within.TotalSeconds} s\n{program.Stdout}\n{program.Stderr}");
            throw;
        }
        Assert.True(exit == 0, $"{what} exited with {exit}\n{program.Stdout}\n{program.Stderr}");
        return program.Stdout;
    }

    /// <summary>A new folder under the system's temporary folder, deleted with everything in it at the end.</summary>
    private sealed class TemporaryFolder : IDisposable
    {
        public TemporaryFolder() =>
            Path = Directory.CreateDirectory(System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"actorpool-package-{Guid.NewGuid():N}")).FullName;

        public string Path { get; }

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }
}
