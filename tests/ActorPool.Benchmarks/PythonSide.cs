using System.Diagnostics;
using System.Text.Json;

namespace ActorPool.Benchmarks;

/// <summary>Runs bench_mp.py, one process per repetition, and reads the JSON object it prints last.</summary>
public sealed class PythonSide(string python, string script)
{
    public string? Version { get; private set; }

    /// <summary>Finds the interpreter; false (with the reason in <see cref="Version"/>) when there is none.</summary>
    public bool Probe()
    {
        try
        {
            var (code, stdout, stderr) = Run(["--version"], TimeSpan.FromSeconds(20), withScript: false);
            Version = (stdout + stderr).Trim();
            return code == 0;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            Version = $"'{python}' not found ({e.Message})";
            return false;
        }
    }

    /// <summary>The version of <paramref name="module"/> (loky's, Dask's) if the interpreter can import it; else null.</summary>
    public string? VersionOf(string module)
    {
        try
        {
            var (code, stdout, _) = Run(["-c", $"import {module} as m; print(m.__version__)"], TimeSpan.FromSeconds(60), withScript: false);
            return code == 0 ? stdout.Trim() : null;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or TimeoutException)
        {
            return null;
        }
    }

    /// <param name="engine">mp (multiprocessing), loky or dask: what bench_mp.py runs the workload on.</param>
    public Sample Measure(string[] args, int workers, string engine, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        args = [.. args, "--workers", workers.ToString(System.Globalization.CultureInfo.InvariantCulture), "--engine", engine];
        var (code, stdout, stderr) = Run(args, TimeSpan.FromMinutes(5), withScript: true);
        var last = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        if (code != 0 || last is null || !last.StartsWith('{'))
            throw new InvalidOperationException(
                $"{python} {Path.GetFileName(script)} {string.Join(' ', args)} failed (exit code {code}): {Tail(stderr)}");
        using var doc = JsonDocument.Parse(last);
        var values = new Dictionary<string, double?>();
        string? outcome = null;
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            switch (p.Value.ValueKind)
            {
                case JsonValueKind.Number: values[p.Name] = p.Value.GetDouble(); break;
                case JsonValueKind.Null: values[p.Name] = null; break;
                case JsonValueKind.String when p.Name is "outcome" or "unavailable": outcome = p.Value.GetString(); break;
            }
        }
        return new Sample(values, outcome);
    }

    private (int Code, string Stdout, string Stderr) Run(string[] args, TimeSpan timeout, bool withScript)
    {
        var info = new ProcessStartInfo(python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (withScript)
            info.ArgumentList.Add(script);
        foreach (var a in args)
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            // The interpreter and the pool workers it started.
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"{python} {string.Join(' ', args)} did not finish within {timeout.TotalSeconds} s and was ended.");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    private static string Tail(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return string.Join(" | ", lines.TakeLast(5));
    }
}
