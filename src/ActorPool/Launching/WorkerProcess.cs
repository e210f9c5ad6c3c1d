using System.Diagnostics;
using System.Runtime.InteropServices;
using ActorPool.Worker;

namespace ActorPool.Launching;

/// <summary>
/// One worker host process, started before it is known which pool will use it (a <c>forkserver</c> spare) or
/// for one pool at once (<c>spawn</c>). It waits for its settings on standard input; the pipe stays open, and its
/// end (this process exiting, even by kill -9) makes the child exit, spare or not. Output and the exit go to
/// whoever <see cref="Adopt"/>ed it; a spare's are dropped.
/// </summary>
internal sealed class WorkerProcess
{
    private readonly Process _process;
    private readonly Queue<string> _errorTail = new();
    private readonly ManualResetEventSlim _stdoutDone = new();
    private readonly ManualResetEventSlim _stderrDone = new();
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile Owner? _owner;

    private sealed record Owner(bool ForwardOutput, Action<int, string> Exited);

    private WorkerProcess(Process process) => _process = process;

    public int Pid { get; private set; }

    /// <summary>Completes with the exit code when the process has exited (whether adopted or not).</summary>
    public Task<int> Exited => _exited.Task;

    /// <summary>
    /// Starts a worker host. <paramref name="spare"/>: it pre-loads (the serializer, <paramref name="preload"/>
    /// assemblies) before it reads its settings, so taking it later costs only the settings and the connection.
    /// </summary>
    public static WorkerProcess Start(string label, bool spare, IReadOnlyList<string> preload, int frameSize = 0)
    {
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
        psi.ArgumentList.Add(label); // visible in ps; identifies nothing secret
        if (spare)
        {
            psi.ArgumentList.Add(WorkerProgram.SpareFlag);
            if (frameSize > 0)
            {
                psi.ArgumentList.Add(WorkerProgram.FrameSizeFlag);
                psi.ArgumentList.Add(frameSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            foreach (var name in preload)
            {
                psi.ArgumentList.Add(WorkerProgram.PreloadFlag);
                psi.ArgumentList.Add(name);
            }
        }
        // A worker's hot path runs on its own threads, not the thread pool; idle pool threads that spin before
        // sleeping only take CPU from user code there (an idle remoting ActorSystem: ~13,700 context switches a
        // second with spinning, ~800 without, measured here). The user's own setting wins.
        psi.Environment.TryAdd("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit", "0");

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var worker = new WorkerProcess(process);
        process.OutputDataReceived += (_, e) => worker.OnOutput(e.Data, error: false);
        process.ErrorDataReceived += (_, e) => worker.OnOutput(e.Data, error: true);
        process.Exited += (_, _) => worker.OnExited();
        process.Start();
        worker.Pid = process.Id;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (spare)
        {
            // A spare's first line: this program's TLS identity, which its ActorSystem speaks from the start.
            try
            {
                process.StandardInput.WriteLine(HandshakeCodec.Write(Hosting.ProcessTrust.Identity));
                process.StandardInput.Flush();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                // It died at once; Take skips it and a pool that got it sees its exit.
            }
        }
        return worker;
    }

    /// <summary>From now on its output is copied to this console (when asked) and its exit reported to <paramref name="exited"/>.</summary>
    public void Adopt(bool forwardOutput, Action<int, string> exited)
    {
        _owner = new Owner(forwardOutput, exited);
        if (_exited.Task.IsCompleted)
            ReportExit();
    }

    private int _reported;

    private void ReportExit()
    {
        if (_owner is { } owner && Interlocked.Exchange(ref _reported, 1) == 0)
            owner.Exited(_exited.Task.Result, ErrorTail);
    }

    /// <summary>Hands the worker its settings; false when it is already gone.</summary>
    public bool SendHandshake(WorkerHandshake handshake)
    {
        try
        {
            _process.StandardInput.WriteLine(handshake.ToLine());
            _process.StandardInput.Flush();
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException)
        {
            return false; // it died at once; its exit is reported through Exited
        }
    }

    /// <summary>Ends the process (and anything it started) now. Never throws.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException or AggregateException)
        {
            // Already exited, or a descendant could not be killed: the exit (if any) is reported through Exited.
        }
    }

    /// <summary>Sends SIGTERM (Python's <c>terminate()</c>): the process may still clean up. Never throws.</summary>
    public void Terminate()
    {
        if (OperatingSystem.IsWindows())
        {
            Kill();
            return;
        }
        if (!_exited.Task.IsCompleted)
            _ = kill(Pid, 15);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private string ErrorTail
    {
        get { lock (_errorTail) return string.Join(Environment.NewLine, _errorTail); }
    }

    /// <summary>Completes when a spare has pre-loaded (never for a spawned worker).</summary>
    public Task Preloaded => _preloaded.Task;

    private readonly TaskCompletionSource _preloaded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when a spare has read an <see cref="ActorProcess"/>'s handshake and runs its target.</summary>
    public Task TargetTaken => _targetTaken.Task;

    private readonly TaskCompletionSource _targetTaken = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void OnOutput(string? line, bool error)
    {
        if (line is null)
        {
            (error ? _stderrDone : _stdoutDone).Set();
            return;
        }
        if (!error && !_preloaded.Task.IsCompleted && line == WorkerProgram.SpareReadyLine)
        {
            _preloaded.TrySetResult();
            return;
        }
        if (!error && !_targetTaken.Task.IsCompleted && line == WorkerProgram.TargetTakenLine)
        {
            _targetTaken.TrySetResult();
            return;
        }
        if (error)
        {
            lock (_errorTail)
            {
                _errorTail.Enqueue(line);
                while (_errorTail.Count > 12) _errorTail.Dequeue();
            }
        }
        if (_owner is { ForwardOutput: true })
            Forward(error ? Console.Error : Console.Out, line);
    }

    /// <summary>
    /// Copies a line of the child's output to this process's console. A console this program closed or replaced with a
    /// broken writer loses the line, not the program: this runs on a thread-pool thread, where an exception ends the
    /// process (Python's children run whatever the parent's sys.stdout is).
    /// </summary>
    internal static void Forward(TextWriter console, string line)
    {
        try
        {
            console.WriteLine(line);
        }
        catch (Exception)
        {
            // The line is dropped; the next one goes to whatever the console is then.
        }
    }

    private void OnExited()
    {
        // Let the last lines of output through before the exit is reported.
        _stdoutDone.Wait(TimeSpan.FromSeconds(1));
        _stderrDone.Wait(TimeSpan.FromSeconds(1));
        int code;
        try { code = _process.ExitCode; } catch (InvalidOperationException) { code = -1; }
        _exited.TrySetResult(code);
        ReportExit();
        _process.Dispose();
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
