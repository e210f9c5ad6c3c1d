using System.Text.RegularExpressions;
using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>The seed example, run as users run it: a separate program whose workers are its own child processes.</summary>
[Collection("programs")]
public class DemoSpec
{
    private static readonly string DemoDll = Path.Combine(AppContext.BaseDirectory, "ActorPool.Demo.dll");

    /// <summary>Runs the demo to its end (bounded) and returns its output, having checked that it succeeded.</summary>
    private static async Task<string> RunDemoAsync(params string[] args)
    {
        using var demo = new StartedProgram(DemoDll, args);
        var exit = await demo.WaitForExitAsync(TimeSpan.FromSeconds(90));
        Assert.True(exit == 0, $"exit {exit}\n{demo.Stdout}\n{demo.Stderr}");
        return demo.Stdout;
    }

    private static int IndexOfLine(string output, string line) => Lines(output).IndexOf(line);

    private static List<string> Lines(string output) => output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();

    [Fact]
    public async Task Demo_in_a_terminal_must_draw_a_live_progress_bar_with_the_workers_lines_above_it()
    {
        // script(1) gives the demo a pseudo-terminal, as a user's shell would.
        using var demo = StartedProgram.Start("script", ["-qfec", $"dotnet {DemoDll} --unit 0.1", "/dev/null"],
            new Dictionary<string, string?> { ["TERM"] = "xterm-256color", ["COLUMNS"] = "100" });
        var exit = await demo.WaitForExitAsync(TimeSpan.FromSeconds(90));
        var output = demo.Stdout;
        Assert.True(exit == 0, $"exit {exit}\n{output}\n{demo.Stderr}");
        Assert.Contains("\u2501", output); // the bar's cells
        Assert.Contains("\u001b[", output); // drawn with escape codes
        Assert.Contains("100%", output);
        Assert.Contains("Progress: 8/8 tasks done", output);
        Assert.DoesNotContain("Progress: 8/8 tasks done (100%)", output); // no plain lines in a terminal
        Assert.Equal(8, Regex.Matches(output, @"Process [a-h]\tDONE").Count); // the workers' lines still appear
        Assert.Contains("Completed 8 tasks: a b c d e f g h", output);
    }

    [Fact]
    public async Task Demo_with_no_progress_must_print_no_progress()
    {
        var output = await RunDemoAsync("--no-progress", "--unit", "0.02");
        Assert.DoesNotContain("Progress", output);
        Assert.Contains("Completed 8 tasks: a b c d e f g h", output);
    }

    [Fact]
    public async Task Demo_must_run_the_seed_example_with_dynamic_dispatch_and_quiet_output()
    {
        using var demo = new StartedProgram(DemoDll, "--unit", "0.1");
        var exit = await demo.WaitForExitAsync(TimeSpan.FromSeconds(90));
        var output = demo.Stdout;
        Assert.True(exit == 0, $"exit {exit}\n{output}\n{demo.Stderr}");

        Assert.Equal(8, Regex.Matches(output, @"^ Process [a-h]\tWaiting \d seconds$", RegexOptions.Multiline).Count);
        Assert.Equal(8, Regex.Matches(output, @"^ Process [a-h]\tDONE$", RegexOptions.Multiline).Count);
        // Dynamic dispatch: f (queued behind nothing) finishes before g, as with Python's Pool.
        Assert.True(IndexOfLine(output, " Process f\tDONE") < IndexOfLine(output, " Process g\tDONE"), output);
        Assert.Matches(@"Elapsed: \d+\.\d+ s", output);
        // Output redirected: the map's progress as plain lines, the last one whole, before the summary.
        Assert.Matches(@"^Progress: 0/8 tasks done \(0%\), \d+\.\d s$", Lines(output).First(l => l.StartsWith("Progress:")));
        var last = Lines(output).Last(l => l.StartsWith("Progress:"));
        Assert.Matches(@"^Progress: 8/8 tasks done \(100%\), \d+\.\d s$", last);
        Assert.True(IndexOfLine(output, last) < IndexOfLine(output, "Completed 8 tasks: a b c d e f g h"), output);
        // An ordinary run prints no Akka warnings, errors or stack traces.
        var all = output + demo.Stderr;
        Assert.False(Regex.IsMatch(all, "WARN|ERROR|fail:|Exception|   at "), $"unexpected warning or error in:\n{all}");
    }

    /// <summary>Python's Pool hangs on Ctrl-C; a program with a pool here ends at once, as a program should, and so do its workers.</summary>
    [Theory]
    [InlineData("INT", 130)]
    [InlineData("TERM", 143)]
    public async Task Demo_interrupted_mid_map_must_exit_at_once_and_leave_no_worker(string signal, int expected)
    {
        // A 10 s unit: the map would take minutes, so an exit within the (generous, for a busy machine) 30 s below is
        // the interrupt's, not the map's end.
        using var demo = new StartedProgram(DemoDll, "--unit", "10");
        Assert.True(await Processes.WaitUntil(() => demo.Stdout.Contains("Waiting"), TimeSpan.FromSeconds(60)), demo.Stderr);
        var workers = demo.Children();
        Assert.Equal(2, workers.Count);
        using (var kill = System.Diagnostics.Process.Start("kill", [$"-{signal}", demo.Pid.ToString()]))
            await kill.WaitForExitAsync();

        Assert.Equal(expected, await demo.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(await Processes.WaitUntil(() => workers.All(pid => !Processes.IsAlive(pid)), TimeSpan.FromSeconds(30)),
            $"workers still running: {string.Join(", ", workers.Where(Processes.IsAlive))}");
    }

    [Fact]
    public async Task Demo_must_finish_every_task_when_a_worker_is_killed()
    {
        using var demo = new StartedProgram(DemoDll, "--unit", "0.3");
        Assert.True(await Processes.WaitUntil(() => demo.Stdout.Contains("Waiting"), TimeSpan.FromSeconds(60)), demo.Stderr);
        var workers = demo.Children();
        Assert.Equal(2, workers.Count);
        Processes.Kill9(workers[0]);

        var exit = await demo.WaitForExitAsync(TimeSpan.FromSeconds(90));
        var output = demo.Stdout;
        Assert.True(exit == 0, $"exit {exit}\n{output}\n{demo.Stderr}");
        foreach (var name in "abcdefgh")
            Assert.Contains($" Process {name}\tDONE", output);
        // The loss is reported once, in one line, without a stack trace.
        Assert.Single(Regex.Matches(demo.Stderr + output, "exited with code 137"));
        Assert.DoesNotMatch(@"Exception|   at ", output + demo.Stderr);
    }

    [Fact]
    public async Task Killing_the_caller_must_leave_no_worker_behind()
    {
        using var demo = new StartedProgram(DemoDll, "--unit", "1");
        Assert.True(await Processes.WaitUntil(() => demo.Stdout.Contains("Waiting"), TimeSpan.FromSeconds(60)), demo.Stderr);
        var workers = demo.Children();
        Assert.Equal(2, workers.Count);

        Processes.Kill9(demo.Pid);

        Assert.True(await Processes.WaitUntil(() => workers.All(p => !Processes.IsAlive(p)), TimeSpan.FromSeconds(10)),
            $"still alive 10 s after the caller was killed: {string.Join(", ", workers.Where(Processes.IsAlive))}");
    }

    [Fact]
    public async Task Demo_must_refuse_a_bad_command_line_with_a_clear_message()
    {
        using var demo = new StartedProgram(DemoDll, "--workers", "0");
        Assert.Equal(2, await demo.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("--workers must be at least 1", demo.Stderr);

        using var fork = new StartedProgram(DemoDll, "--start-method", "fork");
        Assert.Equal(2, await fork.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("cannot be forked safely", fork.Stderr);

        // A value of the wrong type is one line (it was an unhandled exception, exit 134), and a near-miss option
        // name gets a suggestion.
        using var unit = new StartedProgram(DemoDll, "--unit", "abc");
        Assert.Equal(2, await unit.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("Cannot parse argument 'abc' for option '--unit'", unit.Stderr);
        Assert.DoesNotContain("Unhandled exception", unit.Stderr);
        using var typo = new StartedProgram(DemoDll, "--worker", "2");
        Assert.Equal(2, await typo.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("Did you mean '--workers'", typo.Stderr);
    }

    [Theory]
    [InlineData("forkserver")]
    [InlineData("thread")]
    public async Task Demo_must_run_the_seed_example_with_every_start_method(string startMethod)
    {
        var output = await RunDemoAsync("--start-method", startMethod, "--unit", "0.05");
        Assert.Equal(8, Regex.Matches(output, @"^ Process [a-h]\tDONE$", RegexOptions.Multiline).Count);
    }

    [Fact]
    public async Task Demo_paired_must_print_the_seeds_paired_pattern()
    {
        // The shortest item of a pair (e) takes 0.4 s: two busy workers' starts (each deserializes the call's closure)
        // were seen 0.15 s apart beside two CPU hogs and another test run, and 0.05 s units let e start after f ended.
        var output = await RunDemoAsync("--paired", "--unit", "0.4");
        string[] pairs = ["ab", "cd", "ef", "gh"];
        for (var i = 0; i < pairs.Length; i++)
        {
            var waiting = pairs[i].Select(n => IndexOfLine(output, $" Process {n}\tWaiting {SeedSeconds(n)} seconds")).ToList();
            var done = pairs[i].Select(n => IndexOfLine(output, $" Process {n}\tDONE")).ToList();
            Assert.All(waiting.Concat(done), at => Assert.True(at >= 0, output));
            // Both Waiting lines of a pair before either DONE line, and the pair done before the next one waits.
            Assert.True(waiting.Max() < done.Min(), $"pair {pairs[i]} did not start together:\n{output}");
            if (i + 1 < pairs.Length)
                Assert.True(done.Max() < pairs[i + 1].Min(n => IndexOfLine(output, $" Process {n}\tWaiting {SeedSeconds(n)} seconds")),
                    $"pair {pairs[i + 1]} started before pair {pairs[i]} had finished:\n{output}");
        }
        Assert.Matches(@"Elapsed: \d+\.\d+ s \(4 pairs", output);

        using var one = new StartedProgram(DemoDll, "--paired", "--workers", "1");
        Assert.Equal(2, await one.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("--workers 2 or more", one.Stderr);
    }

    private static int SeedSeconds(char name) => Demo.SeedExample.Data.Single(d => d.Name == name.ToString()).Seconds;

    [Theory]
    [InlineData("spawn")]
    [InlineData("forkserver")]
    [InlineData("thread")]
    public async Task Demo_per_item_process_must_run_one_process_per_item_all_at_once(string startMethod)
    {
        // 8 units of 0.3 s: the longest item outlasts the start-up of 8 processes on a busy 2-core machine.
        var output = await RunDemoAsync("--per-item-process", "--start-method", startMethod, "--unit", "0.3");
        Assert.Equal(8, Regex.Matches(output, @"^ Process [a-h]\tDONE$", RegexOptions.Multiline).Count);
        // All started, then all joined: every item was waiting before the last one was done (one process after
        // another would put each DONE line before the next Waiting line).
        var lines = output.Split('\n').ToList();
        var lastDone = lines.FindLastIndex(l => l.EndsWith("\tDONE", StringComparison.Ordinal) || l.EndsWith("\tDONE\r", StringComparison.Ordinal));
        Assert.All("abcdefgh", n => Assert.InRange(lines.FindIndex(l => l.StartsWith($" Process {n}\tWaiting", StringComparison.Ordinal)), 0, lastDone));
        Assert.Contains("Completed 8 of 8 processes", output);
    }

    [Fact]
    public async Task Daemon_processes_must_end_with_their_program_even_when_it_is_killed()
    {
        // Its shortest item waits 10 s: all 8 are still running when the program is killed, however busy the machine.
        using var demo = new StartedProgram(DemoDll, "--per-item-process", "--daemon", "--unit", "10");
        Assert.True(await Processes.WaitUntil(() => Regex.Matches(demo.Stdout, "Waiting").Count == 8, TimeSpan.FromSeconds(60)), demo.Stdout + demo.Stderr);
        var children = demo.Children();
        Assert.Equal(8, children.Count);

        Processes.Kill9(demo.Pid);

        Assert.True(await Processes.WaitUntil(() => children.All(p => !Processes.IsAlive(p)), TimeSpan.FromSeconds(10)),
            $"still alive 10 s after their program was killed: {string.Join(", ", children.Where(Processes.IsAlive))}");
        Assert.DoesNotContain("DONE", demo.Stdout);
    }

    [Fact]
    public async Task Demo_with_queue_must_receive_every_result_through_the_queue()
    {
        var output = await RunDemoAsync("--with-queue", "--unit", "0.05");
        foreach (var name in "abcdefgh")
            Assert.True(IndexOfLine(output, $" Process {name}\tDONE") < IndexOfLine(output, $" Received {name} through the queue"), output);
        Assert.Matches(@"Completed 8 tasks: ([a-h] ){7}[a-h]", output);
    }

    [Fact]
    public async Task Demo_with_lock_must_print_every_line_whole()
    {
        var output = await RunDemoAsync("--with-lock", "--unit", "0.05");
        Assert.Equal(8, Regex.Matches(output, @"^ Process [a-h]\tWaiting \d seconds$", RegexOptions.Multiline).Count);
        Assert.Equal(8, Regex.Matches(output, @"^ Process [a-h]\tDONE$", RegexOptions.Multiline).Count);
    }
}
