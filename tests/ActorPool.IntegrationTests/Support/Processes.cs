using System.Diagnostics;
using System.Text;

namespace ActorPool.IntegrationTests.Support;

/// <summary>Process helpers for tests: child lookup through /proc, liveness, and a started program that is always ended.</summary>
internal static class Processes
{
    /// <summary>Direct children of <paramref name="pid"/> (Linux /proc).</summary>
    public static IReadOnlyList<int> ChildrenOf(int pid)
    {
        var children = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var candidate))
                continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                // pid (comm) state ppid ...: comm may contain spaces, so parse after the last ')'.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1]) == pid)
                    children.Add(candidate);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return children;
    }

    /// <summary>TCP ports <paramref name="pid"/> listens on (Linux /proc: its sockets' inodes in the listening table).</summary>
    public static List<int> ListeningPorts(int pid)
    {
        var inodes = new HashSet<string>();
        foreach (var fd in Directory.EnumerateFiles($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                    inodes.Add(target[8..^1]);
            }
            catch (IOException)
            {
            }
        }
        var ports = new List<int>();
        foreach (var table in new[] { $"/proc/{pid}/net/tcp", $"/proc/{pid}/net/tcp6" })
        {
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length > 9 && f[3] == "0A" && inodes.Contains(f[9]))
                    ports.Add(Convert.ToInt32(f[1][(f[1].LastIndexOf(':') + 1)..], 16));
            }
        }
        return ports.Distinct().ToList();
    }

    public static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z'; // a zombie has exited
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static void Kill9(int pid) => Signal(pid, "KILL");

    /// <summary>Sends signal <paramref name="name"/> (KILL, STOP, CONT, TERM) to one process this test started.</summary>
    public static void Signal(int pid, string name)
    {
        using var kill = Process.Start("kill", ["-s", name, pid.ToString()]);
        kill.WaitForExit(5000);
    }

    /// <summary>Polls until <paramref name="condition"/> holds or the time is up.</summary>
    public static async Task<bool> WaitUntil(Func<bool> condition, TimeSpan within)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < within)
        {
            if (condition())
                return true;
            await Task.Delay(50);
        }
        return condition();
    }
}

/// <summary>
/// A program started by a test, with its output captured line by line. Disposal kills it and every process it
/// started (by id), so a failing test leaves nothing behind.
/// </summary>
internal sealed class StartedProgram : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly HashSet<int> _seenChildren = new();

    public StartedProgram(string dll, params string[] args) : this(dll, null, args)
    {
    }

    /// <param name="dll">The program.</param>
    /// <param name="environment">Variables set for it (besides this process's).</param>
    /// <param name="args">Its command line.</param>
    public StartedProgram(string dll, IReadOnlyDictionary<string, string>? environment, params string[] args)
        : this("dotnet", [dll, .. args], environment?.ToDictionary(e => e.Key, string? (e) => e.Value), null)
    {
    }

    /// <summary>Starts any executable (<c>dotnet</c> with a command, an installed tool...).</summary>
    /// <param name="fileName">The executable.</param>
    /// <param name="args">Its command line.</param>
    /// <param name="environment">Variables set for it (besides this process's); a null value removes one.</param>
    /// <param name="workingDirectory">Where it runs (default: this process's current directory).</param>
    public static StartedProgram Start(string fileName, IReadOnlyList<string> args,
        IReadOnlyDictionary<string, string?>? environment = null, string? workingDirectory = null) =>
        new(fileName, args, environment, workingDirectory);

    private StartedProgram(string fileName, IReadOnlyList<string> args, IReadOnlyDictionary<string, string?>? environment,
        string? workingDirectory)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (workingDirectory is not null)
            psi.WorkingDirectory = workingDirectory;
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
                psi.Environment.Remove(name);
            else
                psi.Environment[name] = value;
        }
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        _process = new Process { StartInfo = psi };
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_stdout) _stdout.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }

    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>The program's current child processes (remembered, so disposal can end them).</summary>
    public IReadOnlyList<int> Children()
    {
        var children = Processes.ChildrenOf(Pid);
        lock (_seenChildren)
            _seenChildren.UnionWith(children);
        return children;
    }

    public async Task<int> WaitForExitAsync(TimeSpan within)
    {
        using var cts = new CancellationTokenSource(within);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                Children();
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }
        lock (_seenChildren)
            foreach (var pid in _seenChildren.Where(Processes.IsAlive))
                Processes.Kill9(pid);
        _process.Dispose();
    }
}
