using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using ActorPool.Coordination;
using ActorPool.Worker;
using Akka.Actor;
using Microsoft.Extensions.Logging;

namespace ActorPool.Launching;

/// <summary>
/// The <c>spawn</c> start method: each worker is a fresh OS process running the worker host with the calling
/// application's own dependency list (<c>dotnet exec --depsfile app.deps.json --runtimeconfig
/// app.runtimeconfig.json ActorPool.dll</c>), so it resolves the user's assemblies without running the user's
/// <c>Main</c>. The pool's secret travels on the child's standard input, never on its command line; the pipe stays
/// open, and its end (this process exiting, even by kill -9) makes the child exit.
/// </summary>
internal sealed class SpawnLauncher : IWorkerLauncher
{
    private readonly string _coordinatorPath;
    private readonly string _secret;
    private readonly bool _forwardOutput;
    private readonly int _maxFrameSize;
    private readonly string? _spillFolder;
    private readonly bool _dataLink;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Process> _processes = new();
    private volatile bool _disposed;

    public SpawnLauncher(string coordinatorPath, string secret, bool forwardOutput, int maxFrameSize, string? spillFolder, bool dataLink, ILogger logger)
    {
        _dataLink = dataLink;
        _spillFolder = spillFolder;
        _maxFrameSize = maxFrameSize;
        _coordinatorPath = coordinatorPath;
        _secret = secret;
        _forwardOutput = forwardOutput;
        _logger = logger;
    }

    public int Launch(string workerId, IActorRef coordinator)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var command = WorkerCommand.Value;
        var psi = new ProcessStartInfo(command.FileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Environment.CurrentDirectory,
        };
        foreach (var arg in command.Arguments)
            psi.ArgumentList.Add(arg);
        psi.ArgumentList.Add(WorkerProgram.WorkerFlag);
        psi.ArgumentList.Add(workerId); // visible in ps; identifies nothing secret
        // A worker's hot path runs on its own threads, not the thread pool; idle pool threads that spin before
        // sleeping only take CPU from user code there (an idle remoting ActorSystem: ~13,700 context switches a
        // second with spinning, ~800 without, measured here). The user's own setting wins.
        psi.Environment.TryAdd("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit", "0");

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var errorTail = new ErrorTail();
        var stdoutDone = new ManualResetEventSlim();
        var stderrDone = new ManualResetEventSlim();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) stdoutDone.Set();
            else if (_forwardOutput) Console.Out.WriteLine(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) { stderrDone.Set(); return; }
            errorTail.Add(e.Data);
            if (_forwardOutput) Console.Error.WriteLine(e.Data);
        };
        process.Exited += (_, _) =>
        {
            // Let the last lines of output through before the exit is reported.
            stdoutDone.Wait(TimeSpan.FromSeconds(1));
            stderrDone.Wait(TimeSpan.FromSeconds(1));
            int code;
            try { code = process.ExitCode; } catch (InvalidOperationException) { code = -1; }
            _processes.TryRemove(workerId, out _);
            coordinator.Tell(new WorkerExited(workerId, code, errorTail.Text));
            process.Dispose();
        };

        process.Start();
        _processes[workerId] = process;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var handshake = new WorkerHandshake(_coordinatorPath, workerId, _secret, Environment.ProcessId, _maxFrameSize, _spillFolder,
            _spillFolder is null || !_dataLink ? null : Path.Combine(_spillFolder, Coordination.DataLinkListener.SocketName));
        try
        {
            process.StandardInput.WriteLine(JsonSerializer.Serialize(handshake, WorkerHandshake.JsonOptions));
            process.StandardInput.Flush();
        }
        catch (IOException)
        {
            // The child died at once; its exit is reported through Exited.
        }
        if (_disposed)
            Kill(workerId);
        return process.Id;
    }

    public void Kill(string workerId)
    {
        if (!_processes.TryGetValue(workerId, out var process))
            return;
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (Exception e)
        {
            // Already exited, or a descendant could not be killed: the exit (if any) is reported through Exited.
            _logger.LogDebug("Kill of worker {Worker}: {Reason}", workerId, e.Message);
        }
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var id in _processes.Keys)
            Kill(id);
    }

    private sealed class ErrorTail
    {
        private readonly Queue<string> _lines = new();

        public void Add(string line)
        {
            lock (_lines)
            {
                _lines.Enqueue(line);
                while (_lines.Count > 12) _lines.Dequeue();
            }
        }

        public string Text
        {
            get { lock (_lines) return string.Join(Environment.NewLine, _lines); }
        }
    }

    private sealed record Command(string FileName, IReadOnlyList<string> Arguments);

    private static readonly Lazy<Command> WorkerCommand = new(ResolveWorkerCommand);

    private static Command ResolveWorkerCommand()
    {
        var host = typeof(WorkerProgram).Assembly.Location;
        if (string.IsNullOrEmpty(host))
            throw new PoolBrokenException("The ActorPool assembly has no file location (single-file or in-memory load); the spawn start method needs it on disk.");
        // The host lists the application's deps.json first, then the frameworks', separated by ';' on every OS.
        var deps = (AppContext.GetData("APP_CONTEXT_DEPS_FILES") as string)?
            .Split(';', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        var args = new List<string> { "exec" };
        if (deps is not null && File.Exists(deps))
        {
            args.Add("--depsfile");
            args.Add(deps);
            var runtimeConfig = deps.EndsWith(".deps.json", StringComparison.OrdinalIgnoreCase)
                ? deps[..^".deps.json".Length] + ".runtimeconfig.json"
                : null;
            if (runtimeConfig is not null && File.Exists(runtimeConfig))
            {
                args.Add("--runtimeconfig");
                args.Add(runtimeConfig);
            }
        }
        args.Add(host);
        return new Command(DotnetHost(), args);
    }

    private static string DotnetHost()
    {
        var fromCli = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromCli) && File.Exists(fromCli))
            return fromCli;
        var exe = RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? "dotnet.exe" : "dotnet";
        if (Environment.ProcessPath is { } self && Path.GetFileName(self).Equals(exe, StringComparison.OrdinalIgnoreCase))
            return self;
        // <root>/shared/Microsoft.NETCore.App/<version>/ -> <root>/dotnet
        var runtimeDir = RuntimeEnvironment.GetRuntimeDirectory();
        var root = Path.GetFullPath(Path.Combine(runtimeDir, "..", "..", ".."));
        var candidate = Path.Combine(root, exe);
        return File.Exists(candidate) ? candidate : exe;
    }
}
