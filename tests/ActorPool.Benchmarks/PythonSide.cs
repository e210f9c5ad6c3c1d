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

    public Sample Measure(string[] args, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
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
