using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ActorPool.Benchmarks;

/// <summary>One row of results.json.</summary>
public sealed record Row(
    [property: JsonPropertyName("workload")] string Workload,
    [property: JsonPropertyName("unit")] string Unit,
    [property: JsonPropertyName("actorpool")] double? ActorPool,
    [property: JsonPropertyName("python")] double? Python,
    [property: JsonPropertyName("ratio")] double? Ratio,
    [property: JsonPropertyName("better")] string Better,
    [property: JsonPropertyName("actorpool_runs")] double?[] ActorPoolRuns,
    [property: JsonPropertyName("python_runs")] double?[] PythonRuns,
    [property: JsonPropertyName("actorpool_outcome")] string? ActorPoolOutcome,
    [property: JsonPropertyName("python_outcome")] string? PythonOutcome,
    [property: JsonPropertyName("description")] string Description,
    [property: JsonPropertyName("peers")] IReadOnlyList<Peer> Peers)
{
    public static Row From(Workload w, Metric m, IReadOnlyList<Sample> ours, IReadOnlyList<Sample> theirs, IReadOnlyDictionary<string, List<Sample>> peers)
    {
        var a = ours.Select(s => s.Values.GetValueOrDefault(m.Key)).ToArray();
        var p = theirs.Select(s => s.Values.GetValueOrDefault(m.Key)).ToArray();
        var am = Median(a);
        var pm = Median(p);
        return new Row(m.Row, m.Unit, am, pm, RatioOf(am, pm), m.Better, a, p,
            ours.Select(s => s.Outcome).LastOrDefault(o => o is not null),
            theirs.Select(s => s.Outcome).LastOrDefault(o => o is not null),
            w.Description,
            peers.Select(kv =>
            {
                var runs = kv.Value.Select(s => s.Values.GetValueOrDefault(m.Key)).ToArray();
                var median = Median(runs);
                return new Peer(kv.Key, median, RatioOf(am, median), runs, kv.Value.Select(s => s.Outcome).LastOrDefault(o => o is not null));
            }).ToArray());
    }

    private static double? RatioOf(double? ours, double? theirs) => ours is { } x && theirs is { } y && y != 0 ? x / y : null;

    /// <summary>This row's figure on another Python engine (loky, Dask), or null when it has none.</summary>
    public Peer? On(string engine) => Peers.FirstOrDefault(p => p.Engine == engine);

    /// <summary>The median of the runs that produced a figure; none when no run did.</summary>
    public static double? Median(IEnumerable<double?> values)
    {
        var v = values.Where(x => x.HasValue).Select(x => x!.Value).Order().ToArray();
        if (v.Length == 0)
            return null;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    /// <summary>How ActorPool stands against Python on this row, in words.</summary>
    public string Verdict()
    {
        if (Ratio is not { } r)
            return ActorPoolOutcome is not null || PythonOutcome is not null ? "see outcomes" : "n/a";
        var ahead = Better == "higher" ? r >= 1 : r <= 1;
        var factor = Better == "higher" ? (ahead ? r : 1 / r) : (ahead ? 1 / r : r);
        return factor < 1.05 ? "even" : ahead ? $"ActorPool {factor:F1}× better" : $"Python {factor:F1}× better";
    }
}

/// <summary>A row's figure on another Python engine: loky's executor or Dask distributed.</summary>
public sealed record Peer(
    [property: JsonPropertyName("engine")] string Engine,
    [property: JsonPropertyName("median")] double? Median,
    [property: JsonPropertyName("ratio")] double? Ratio,
    [property: JsonPropertyName("runs")] double?[] Runs,
    [property: JsonPropertyName("outcome")] string? Outcome);

public static class Report
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static string Machine(string pythonVersion, int repetitions) =>
        $"{Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription.Trim()} {RuntimeInformation.OSArchitecture}, " +
        $".NET {Environment.Version}, {pythonVersion}; medians of {repetitions} runs per side, the two sides alternating.";

    public static string Markdown(IReadOnlyList<Row> rows, string machine)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Machine: {machine}").AppendLine();
        sb.AppendLine("| workload | unit | ActorPool | Python | loky | Dask | ActorPool ÷ Python | ÷ loky | ÷ Dask | better | verdict (against Python) |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
        foreach (var r in rows)
        {
            var loky = r.On("loky");
            var dask = r.On("dask");
            sb.AppendLine($"| {r.Workload} | {r.Unit} | {Cell(r.ActorPool, r.ActorPoolOutcome)} | {Cell(r.Python, r.PythonOutcome)} | " +
                          $"{(loky is null ? "–" : Cell(loky.Median, loky.Outcome))} | {(dask is null ? "–" : Cell(dask.Median, dask.Outcome))} | " +
                          $"{RatioCell(r.Ratio)} | {RatioCell(loky?.Ratio)} | {RatioCell(dask?.Ratio)} | {r.Better} | {r.Verdict()} |");
        }
        return sb.ToString();
    }

    private static string RatioCell(double? ratio) => ratio is { } x ? x.ToString("F2", CultureInfo.InvariantCulture) : "–";

    private static string Cell(double? value, string? outcome)
    {
        var v = value switch
        {
            null => "",
            >= 100 => value.Value.ToString("N0", CultureInfo.InvariantCulture),
            >= 10 => value.Value.ToString("F1", CultureInfo.InvariantCulture),
            _ => value.Value.ToString("F3", CultureInfo.InvariantCulture),
        };
        return outcome is null ? (v == "" ? "–" : v) : v == "" ? outcome : $"{v} ({outcome})";
    }

    public static void Write(string folder, IReadOnlyList<Row> rows, string markdown)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "results.json"), JsonSerializer.Serialize(rows, Json));
        File.WriteAllText(Path.Combine(folder, "results.md"), markdown);
    }
}
