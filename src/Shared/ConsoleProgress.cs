using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Spectre.Console;

namespace ActorPool.Shared;

/// <summary>
/// Progress of long work on the console (compiled into the demo and the node program). In a terminal: live progress bars
/// (Spectre.Console), one per entry, with every other line the program writes to <see cref="Console.Out"/> meanwhile (the
/// workers' output) printed above them. With output redirected: plain lines, at most one a second per entry, and its last.
/// </summary>
internal sealed class ConsoleProgress : IAsyncDisposable
{
    private sealed record Entry(string Label, double Value, double? Max, string Detail, bool Done);

    private readonly ConcurrentDictionary<string, Entry> _entries = new();
    private readonly ConcurrentDictionary<string, long> _lastLine = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<string> _linesAbove = new();
    private readonly TextWriter _out = Console.Out;
    private readonly TextWriter _error = Console.Error;
    private readonly LinesAbove? _outAbove, _errorAbove;
    private readonly Task _display;

    /// <summary>True when bars are drawn (a terminal), false when plain lines are written.</summary>
    public bool Live { get; }

    private ConsoleProgress(bool live)
    {
        Live = live;
        if (!live)
        {
            _display = Task.CompletedTask;
            return;
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(_out) });
        Console.SetOut(_outAbove = new LinesAbove(_linesAbove));
        if (!Console.IsErrorRedirected) // the same screen: error lines go above the bars too, not through them
            Console.SetError(_errorAbove = new LinesAbove(_linesAbove));
        _display = console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(context => Render(context, console));
    }

    /// <summary>Bars when standard output is a terminal, else plain lines.</summary>
    public static ConsoleProgress Start() =>
        new(!Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive);

    /// <summary>The progress of one call, shown under <paramref name="label"/>.</summary>
    public IProgress<PoolProgress> For(string label) =>
        new Progress(p => Update(label, label, p.Completed, p.Total, Describe(p, withTime: !Live), p.IsFinal));

    /// <summary>Shows entry <paramref name="key"/>: <paramref name="value"/> of <paramref name="max"/> (unknown: null), with a detail.</summary>
    public void Update(string key, string label, double value, double? max, string detail, bool done)
    {
        var entry = new Entry(label, value, max, detail, done);
        _entries[key] = entry;
        if (Live)
            return;
        var now = Stopwatch.GetTimestamp();
        var last = _lastLine.GetOrAdd(key, 0);
        if (!done && last != 0 && Stopwatch.GetElapsedTime(last, now) < TimeSpan.FromSeconds(1))
            return;
        if (!done && last != 0 && max is { } whole && value >= whole)
            return; // all done but not yet ended: the last line follows
        if (done && last == -1)
            return;
        _lastLine[key] = done ? -1 : now;
        _out.WriteLine($"{label}: {detail}");
    }

    /// <summary>Done, failed and retried counts; for a plain line also the fraction and the time (a bar shows both).</summary>
    public static string Describe(PoolProgress p, bool withTime = true)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{p.Completed:N0}/{(p.Total is { } t ? t.ToString("N0", CultureInfo.InvariantCulture) : "?")} tasks done");
        if (withTime && p.Fraction is { } f)
            sb.Append(CultureInfo.InvariantCulture, $" ({f * 100:0}%)");
        if (p.Failed > 0)
            sb.Append(CultureInfo.InvariantCulture, $", {p.Failed:N0} failed");
        if (p.Retried > 0)
            sb.Append(CultureInfo.InvariantCulture, $", {p.Retried:N0} retried");
        if (withTime)
            sb.Append(CultureInfo.InvariantCulture, $", {p.Elapsed.TotalSeconds:0.0} s");
        return sb.ToString();
    }

    private async Task Render(ProgressContext context, IAnsiConsole console)
    {
        var tasks = new Dictionary<string, ProgressTask>();
        while (true)
        {
            var stopping = _stop.IsCancellationRequested;
            while (_linesAbove.TryDequeue(out var line))
                console.WriteLine(line);
            foreach (var (key, e) in _entries)
            {
                if (!tasks.TryGetValue(key, out var task))
                    tasks[key] = task = context.AddTask(Markup.Escape(e.Label));
                task.Description = Markup.Escape($"{e.Label}: {e.Detail}");
                task.IsIndeterminate = e.Max is null && !e.Done;
                task.MaxValue = e.Max is > 0 and var max ? max : Math.Max(1, e.Value);
                task.Value = e.Done && e.Max is null ? task.MaxValue : e.Value;
                if (e.Done)
                    task.StopTask();
            }
            if (stopping)
                return;
            try
            {
                await Task.Delay(50, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>
    /// Draws the last state, stops the bars and gives <see cref="Console.Out"/> (and Error) back. Lines still queued, and
    /// any line written meanwhile, are printed: none is lost, even when the display failed.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            await _display.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A display that failed leaves plain output: what it would have shown above the bars is printed below.
        }
        if (_outAbove is null)
            return;
        lock (_outAbove.Gate)
        lock (_errorAbove?.Gate ?? _outAbove.Gate)
        {
            while (_linesAbove.TryDequeue(out var line))
                _out.WriteLine(line);
            _outAbove.WriteThrough(_out);
            _errorAbove?.WriteThrough(_error);
            Console.SetOut(_out);
            if (_errorAbove is not null)
                Console.SetError(_error);
        }
    }

    private sealed class Progress(Action<PoolProgress> report) : IProgress<PoolProgress>
    {
        public void Report(PoolProgress value) => report(value);
    }

    /// <summary>
    /// Console.Out while bars are shown: whole lines are queued for the display loop, which prints them above the bars.
    /// Never calls Spectre itself: Console.Out's lock is held here, and the display takes it too (for the window size).
    /// </summary>
    private sealed class LinesAbove(ConcurrentQueue<string> lines) : TextWriter
    {
        private readonly StringBuilder _line = new();

        /// <summary>Once the bars are gone: where writes go straight through (a writer someone still holds).</summary>
        private TextWriter? _through;

        public object Gate => _line;

        public override Encoding Encoding => Encoding.UTF8;

        /// <summary>From now on, writes go to <paramref name="writer"/>, first the part of a line written so far.</summary>
        public void WriteThrough(TextWriter writer)
        {
            lock (_line)
            {
                writer.Write(_line.ToString());
                _line.Clear();
                _through = writer;
            }
        }

        public override void Write(char value)
        {
            lock (_line)
            {
                if (_through is not null)
                    _through.Write(value);
                else if (value == '\n')
                    EmitLine();
                else if (value != '\r')
                    _line.Append(value);
            }
        }

        public override void Write(string? value)
        {
            if (value is null)
                return;
            lock (_line)
            {
                if (_through is not null)
                {
                    _through.Write(value);
                    return;
                }
                foreach (var c in value)
                    Write(c);
            }
        }

        public override void WriteLine(string? value)
        {
            lock (_line)
            {
                if (_through is not null)
                {
                    _through.WriteLine(value);
                    return;
                }
                Write(value);
                EmitLine();
            }
        }

        private void EmitLine()
        {
            lines.Enqueue(_line.ToString());
            _line.Clear();
        }
    }
}
