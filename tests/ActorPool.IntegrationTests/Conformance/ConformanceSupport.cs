using System.Collections;
using System.Reflection;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>
/// What the conformance tests share: a scratch folder for gates and marks (files, one clock and one namespace for
/// every process of this host), and the process objects a test started, ended however the test ends.
/// </summary>
internal sealed class Scratch : IDisposable
{
    private readonly List<ActorProcess> _processes = [];

    public Scratch() => Folder = Directory.CreateTempSubdirectory("actorpool-conformance-").FullName;

    public string Folder { get; }

    /// <summary>A path in the folder (nothing is created).</summary>
    public string Path(string name) => System.IO.Path.Combine(Folder, name);

    /// <summary>Creates the file <paramref name="name"/>: a gate that <see cref="ConformanceFunctions.WaitForFile"/> waits for.</summary>
    public void Open(string name) => File.WriteAllText(Path(name), "open");

    /// <summary>Starts <paramref name="p"/> and remembers it, so it is ended when the test ends.</summary>
    public ActorProcess Started(ActorProcess p)
    {
        Track(p);
        p.Start();
        return p;
    }

    /// <summary>Remembers a process the test starts itself.</summary>
    public ActorProcess Track(ActorProcess p)
    {
        lock (_processes)
            _processes.Add(p);
        return p;
    }

    public void Dispose()
    {
        List<ActorProcess> started;
        lock (_processes)
            started = _processes.ToList();
        foreach (var p in started.Where(p => p.StartMethod != "thread" && p.IsAlive))
            p.Kill();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// Ends the forkserver's waiting spares when a test class is done (they outlive pools and processes by design, until
/// the program exits); once per class, so the class's tests share the spares.
/// </summary>
public sealed class ForkServerSpares : IDisposable
{
    public void Dispose() => Launching.ForkServer.ShutdownAll();
}

/// <summary>Python's <c>SayWhenError</c> (a <c>ValueError</c>): raised by an input sequence, in the caller.</summary>
public sealed class SayWhenException() : ArgumentException("Somebody said when");

/// <summary>An input whose length is known but whose enumeration fails (CPython's SpecialIterable: <c>__len__</c> 1, <c>__next__</c> raises).</summary>
public sealed class SpecialIterable : IReadOnlyCollection<int>
{
    public int Count => 1;

    public IEnumerator<int> GetEnumerator() => throw new SayWhenException();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A value bound to this process (it holds a thread): it cannot be sent to another one (Python: <c>__reduce__</c> raises).</summary>
public sealed class Unpicklable
{
    public Thread Owner { get; } = Thread.CurrentThread;
}

/// <summary>A plain object whose copies travel to workers and back (CPython's CountedObject).</summary>
public sealed class CountedObject
{
    public int Id { get; init; }
}

/// <summary>A callable object used as a process target (CPython's DummyCallable).</summary>
public sealed class DummyCallable
{
    public void Call(ActorQueue<int> q, DummyCallable c)
    {
        if (c is null)
            throw new ArgumentNullException(nameof(c));
        q.Put(5);
    }
}

/// <summary>What a child process reports about its call (CPython's <c>_test</c> sends args, kwargs, name, pid).</summary>
public sealed record CallReport(int A, int B, int Hello, double Bye, int Pid, int NativeThread);

/// <summary>Tasks and process targets of the conformance tests: static methods, as a user's code would be.</summary>
public static class ConformanceFunctions
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    public static int Sqr(int x) => x * x;

    /// <summary>CPython's <c>sqr(x, wait)</c>.</summary>
    public static int SqrAfter(int x, int millis)
    {
        Thread.Sleep(millis);
        return x * x;
    }

    /// <summary>CPython's <c>sqr(x, wait, event)</c> with an event: <c>x * x</c> once <paramref name="gate"/> exists.</summary>
    public static int SqrWhenOpen(int x, string gate)
    {
        WaitForFile(gate);
        return x * x;
    }

    public static int Mul(int x, int y) => x * y;

    public static CountedObject Identity(CountedObject o) => o;

    /// <summary>CPython's <c>exception_throwing_generator(total, when)</c>: raises at index <paramref name="when"/> (at once for -1).</summary>
    public static IEnumerable<int> ExceptionThrowingGenerator(int total, int when)
    {
        if (when == -1)
            throw new SayWhenException();
        for (var i = 0; i < total; i++)
        {
            if (i == when)
                throw new SayWhenException();
            yield return i;
        }
    }

    /// <summary>Waits (at most 2 minutes) until <paramref name="path"/> exists.</summary>
    public static void WaitForFile(string path)
    {
        for (var waited = 0; !File.Exists(path) && waited < 120_000; waited += 20)
            Thread.Sleep(20);
    }

    public static void Mark(string path) => File.WriteAllText(path, Environment.ProcessId.ToString());

    /// <summary>CPython's <c>_sleep_and_set_event</c>: sleeps, then marks <paramref name="path"/> (with <c>x * x</c>).</summary>
    public static void SqrAndMark(int x, string path, int millis)
    {
        Thread.Sleep(millis);
        File.WriteAllText(path, (x * x).ToString());
    }

    /// <summary>CPython's <c>_test</c>: reports its arguments, its pid and its main thread (here: the thread it runs on).</summary>
    public static void Report(ActorQueue<CallReport> q, int a, int b, int hello = 0, double bye = 0) =>
        q.Put(new CallReport(a, b, hello, bye, Environment.ProcessId, NativeThreadId()));

    /// <summary>The OS thread id of the calling thread (Linux gettid).</summary>
    public static int NativeThreadId() => int.Parse(File.ReadAllText("/proc/thread-self/stat").Split(' ')[0]);

    /// <summary>CPython's <c>_test_args</c>.</summary>
    public static void PutArgument(ActorQueue<object?> q, object? arg) => q.Put(arg);

    /// <summary>
    /// CPython's <c>_test_recursion</c>: report the id (a line appended to <paramref name="log"/>, written before any child
    /// starts), then start two children and join each.
    /// </summary>
    public static void Recurse(string log, string id, string method)
    {
        File.AppendAllText(log, $"[{id}]\n");
        if (id.Length >= 2)
            return;
        for (var i = 0; i < 2; i++)
        {
            var p = new ActorProcess(Recurse, log, id + i, method) { StartMethod = method };
            p.Start();
            if (!p.Join(Bound) || p.ExitCode != 0)
                throw new InvalidOperationException($"child {id + i} did not end well: {p.ExitCode}");
        }
    }

    /// <summary>CPython's <c>_test_child_fd_inflation</c>: report the open file descriptors, then wait.</summary>
    public static void ReportDescriptors(string report, string gate)
    {
        var count = Directory.GetFileSystemEntries("/proc/self/fd").Length;
        File.WriteAllText(report + ".tmp", count.ToString());
        File.Move(report + ".tmp", report);
        WaitForFile(gate);
    }

    /// <summary>
    /// CPython's <c>_test_wait_for_threads</c>: a foreground thread writes <paramref name="path"/> after 0.5 s; a background
    /// thread deletes it after 20 s. A child that waits for the first and not the second leaves the file behind.
    /// </summary>
    public static void StartThreads(string path)
    {
        new Thread(() =>
        {
            Thread.Sleep(500);
            File.WriteAllText(path, "set");
        }) { IsBackground = false }.Start();
        new Thread(() =>
        {
            Thread.Sleep(20_000);
            File.Delete(path);
        }) { IsBackground = true }.Start();
    }

    /// <summary>CPython's <c>_test_error_on_stdio_flush</c> with the child breaking its own streams: closed (<paramref name="close"/>) or null writers.</summary>
    public static void BreakOwnStreamsAndMark(string path, bool close)
    {
        Console.Out.WriteLine("a line before the streams break");
        Console.SetOut(close ? Closed() : TextWriter.Null);
        Console.SetError(close ? Closed() : TextWriter.Null);
        File.WriteAllText(path, "set");
    }

    /// <summary>A writer whose stream is closed: writing or flushing it throws.</summary>
    public static TextWriter Closed()
    {
        var writer = new StreamWriter(new MemoryStream());
        writer.Dispose();
        return writer;
    }

    /// <summary>Writes to both streams and marks <paramref name="path"/>: a child whose output the parent copies to its console.</summary>
    public static void PrintAndMark(string path)
    {
        Console.Out.WriteLine("child stdout line");
        Console.Error.WriteLine("child stderr line");
        File.WriteAllText(path, "set");
    }

    /// <summary>CPython's <c>_test_stderr_flush</c>: standard error goes to a file (not flushed by hand), then the target raises.</summary>
    public static void DivideByZeroWithStderrIn(string path)
    {
        Console.SetError(new StreamWriter(File.Open(path, FileMode.CreateNew)));
        var zero = 0;
        _ = 1 / zero; // MARKER
    }

    /// <summary>CPython's <c>_test_sys_exit</c> for an integer: the target ends its process with <paramref name="code"/>.</summary>
    public static void Exit(int code) => Environment.Exit(code);

    /// <summary>CPython's <c>_UpperCaser.run</c>: upper-cases what arrives until null, answering on the other queue.</summary>
    public static void UpperCase(ActorQueue<string?> requests, ActorQueue<string> replies)
    {
        while (requests.Get(Bound) is { } s)
            replies.Put(s.ToUpperInvariant());
    }

    /// <summary>CPython's <c>_test_put</c>: takes <paramref name="count"/> items.</summary>
    public static void Take(ActorQueue<int> q, int count)
    {
        for (var i = 0; i < count; i++)
            q.Get(Bound);
    }

    /// <summary>CPython's <c>_test_get</c> / <c>_test_fork</c>: puts <paramref name="first"/> .. <paramref name="last"/>.</summary>
    public static void PutRange(ActorQueue<int> q, int first, int last)
    {
        for (var i = first; i <= last; i++)
            q.Put(i);
    }

    /// <summary>CPython's <c>_test_task_done</c>: takes items until the sentinel -1, marking each done after noting it.</summary>
    public static void Consume(JoinableActorQueue<int> q, ActorQueue<int> processed)
    {
        for (var item = q.Get(Bound); item != -1; item = q.Get(Bound))
        {
            Thread.Sleep(10);
            processed.Put(item);
            processed.FlushAsync().Wait(Bound);
            q.TaskDone();
        }
    }

    /// <summary>TestSimpleQueue's <c>_test_empty</c>: puts whether the queue is empty, twice.</summary>
    public static void PutEmptiness(ActorQueue<bool> q)
    {
        q.Put(q.IsEmpty);
        q.Put(q.IsEmpty);
    }

    /// <summary>TestStartMethod's <c>_check_context</c>: reports the child's start method.</summary>
    public static void PutStartMethod(ActorQueue<string> q) => q.Put(StartMethods.Current);

    /// <summary>TestStartMethod's <c>_check_context</c>, reporting in a file: the child's start method.</summary>
    public static void WriteStartMethod(string path) => File.WriteAllText(path, StartMethods.Current);

    /// <summary>TestStartMethod's <c>_put_two_and_nest_once</c>: puts 2, and a grandchild started the default way puts 1.</summary>
    public static void PutTwoAndNestOnce(ActorQueue<int> q)
    {
        q.Put(2);
        var p = new ActorProcess(PutOne, q);
        p.Start();
        if (!p.Join(Bound) || p.ExitCode != 0)
            throw new InvalidOperationException($"the grandchild did not end well: {p.ExitCode}");
    }

    public static void PutOne(ActorQueue<int> q) => q.Put(1);

    /// <summary>
    /// A task of CPython's test_map_no_failfast: input 0 raises (a 1 MiB message) once input 1 runs; input 1 notes that it
    /// started, runs a while, notes that it finished, and raises too.
    /// </summary>
    public static int RaiseLargeError((int Index, string Folder) x)
    {
        var started = Path.Combine(x.Folder, "1.started");
        if (x.Index == 0)
        {
            WaitForFile(started);
        }
        else
        {
            File.WriteAllText(started, "");
            Thread.Sleep(300);
            File.WriteAllText(Path.Combine(x.Folder, "1.finished"), "");
        }
        throw new ArgumentException(new string('x', 1 << 20));
    }

    /// <summary>CPython's <c>_test_traceback</c>.</summary>
    public static int RaiseRuntimeError123() => throw new InvalidOperationException("123");

    /// <summary>CPython's <c>_test_wrapped_exception</c>.</summary>
    public static int RaiseRuntimeErrorFoo() => throw new InvalidOperationException("foo");

    /// <summary>CPython's <c>raising()</c>.</summary>
    public static int RaiseKeyError() => throw new KeyNotFoundException("key");

    /// <summary>CPython's <c>unpickleable_result()</c>: a result bound to this process.</summary>
    public static Thread UnpickleableResult() => Thread.CurrentThread;

    /// <summary>CPython's <c>initializer(ns)</c>: here the shared object is a queue; each run puts one mark.</summary>
    public static void Initializer(ActorQueue<int> ns)
    {
        ns.Put(1);
        ns.FlushAsync().Wait(Bound);
    }

    /// <summary>
    /// CPython's test_worker_finalization_via_atexit_handler: a process holds a pool in a static, maps on it, and ends
    /// without closing it. The pool's worker pid is written to <paramref name="pids"/> first.
    /// </summary>
    public static void MapAndLeaveThePoolOpen(string pids)
    {
        Held = new Pool(1);
        var results = Held.Map(x => (double)x, Enumerable.Range(0, 10));
        if (!results.SequenceEqual(Enumerable.Range(0, 10).Select(x => (double)x)))
            throw new InvalidOperationException("wrong results");
        File.WriteAllText(pids, string.Join(' ', Held.GetStatus().Workers.Select(w => w.Pid)));
    }

    /// <summary>The pool <see cref="MapAndLeaveThePoolOpen"/> leaves open (CPython's global <c>problem</c>).</summary>
    public static Pool? Held;

    /// <summary>The waiting spares of the forkserver ActorProcess uses (their pids), read from the server itself.</summary>
    internal static IReadOnlyList<int> SparePids(Launching.ForkServer server)
    {
        var field = typeof(Launching.ForkServer).GetField("_spares", BindingFlags.Instance | BindingFlags.NonPublic)!;
        var spares = (Queue<Launching.WorkerProcess>)field.GetValue(server)!;
        lock (spares)
            return spares.Where(s => !s.Exited.IsCompleted).Select(s => s.Pid).ToList();
    }
}

/// <summary>Reads <c>count</c> items from a queue, each get bounded.</summary>
internal static class QueueReading
{
    public static List<T> Take<T>(this ActorQueue<T> q, int count, TimeSpan bound)
    {
        var items = new List<T>(count);
        for (var i = 0; i < count; i++)
            items.Add(q.Get(bound));
        return items;
    }
}
