using Xunit;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>CPython's <c>TestStartMethod</c>: contexts, the program-wide method, forkserver preloads, nested processes.</summary>
[Collection("alone")]
public sealed class CPythonStartMethodSpec : IDisposable, IClassFixture<ForkServerSpares>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    public void Dispose() => StartMethods.Reset();

    /// <summary>CPython's <c>check_context</c>: a child started from <paramref name="ctx"/> reports its start method.</summary>
    private static string ChildsStartMethod(PoolContext ctx)
    {
        var path = Path.Combine(Path.GetTempPath(), $"actorpool-method-{Guid.NewGuid():N}");
        var p = ctx.Process(ConformanceFunctions.WriteStartMethod, path);
        try
        {
            p.Start();
            Assert.True(p.Join(Bound));
            Assert.Equal(0, p.ExitCode);
            return File.ReadAllText(path);
        }
        finally
        {
            if (p.IsAlive)
                p.Kill();
            File.Delete(path);
        }
    }

    // CPython: TestStartMethod.test_context
    [Fact]
    public void A_context_must_have_its_method_and_start_children_with_it()
    {
        Assert.Contains("cannot be forked safely", Assert.Throws<ArgumentException>(() => StartMethods.GetContext("fork")).Message);
        foreach (var method in new[] { "spawn", "forkserver" })
        {
            var ctx = StartMethods.GetContext(method);
            Assert.Equal(method, ctx.StartMethod);
            Assert.Equal(method, ChildsStartMethod(ctx));
        }
        Assert.Equal("spawn", StartMethods.Current); // a context does not set the program's method
    }

    // CPython: TestStartMethod.test_context_check_module_types
    [Fact]
    public void A_forkserver_preload_must_be_a_list_of_assembly_names()
    {
        // Python: set_forkserver_preload([1, 2, 3]) is a TypeError; here the preload list is HOCON.
        foreach (var preload in new[] { "[\"\"]", "[\"-x\"]", "{ a = 1 }" })
        {
            var error = Assert.ThrowsAny<ArgumentException>(() => new Pool(new PoolOptions { Processes = 1, StartMethod = "forkserver", Config = $"actorpool.forkserver.preload = {preload}" }));
            Assert.Contains("actorpool.forkserver.preload", error.Message);
        }
    }

    // CPython: TestStartMethod.test_set_get
    [Fact]
    public void The_program_wide_method_must_be_what_was_set_and_what_children_start_with()
    {
        var count = 0;
        foreach (var method in StartMethods.All)
        {
            StartMethods.Set(method, force: true);
            Assert.Equal(method, StartMethods.Current);
            var ctx = StartMethods.GetContext();
            Assert.Equal(method, ctx.StartMethod);
            if (method != "thread") // a thread's "child" is this process, whose method is the one just set anyway
                Assert.Equal(method, ChildsStartMethod(ctx));
            count++;
        }
        Assert.True(count >= 1);
    }

    // CPython: TestStartMethod.test_get_all
    [Fact]
    public void All_start_methods_must_be_listed_with_the_default_first()
    {
        Assert.Equal(["spawn", "forkserver", "thread"], StartMethods.All); // no 'fork'; 'thread' is multiprocessing.dummy
        Assert.Equal(StartMethods.All[0], StartMethods.Current);
    }

    // CPython: TestStartMethod.test_preload_resources
    [Fact]
    public async Task A_forkserver_pool_must_work_with_a_preloaded_assembly()
    {
        // mp_preload.py: a preloaded module (one that makes a Lock when imported) and a process started after it.
        var lk = new ActorLock();
        var p = new Pool(new PoolOptions { Processes = 1, StartMethod = "forkserver", Config = "actorpool.forkserver.preload = [\"ActorPool.IntegrationTests\"]" });
        using var _ = new Support.Terminating(p);
        var ok = await p.ApplyAsync(() =>
        {
            using (lk.Lock(TimeSpan.FromSeconds(60)))
                return AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "ActorPool.IntegrationTests") ? "ok" : "not loaded";
        }).WaitAsync(Bound);
        Assert.Equal("ok", ok);
    }

    // CPython: TestStartMethod.test_mixed_startmethod
    [Fact]
    public void A_queue_must_work_with_processes_of_every_start_method()
    {
        // CPython's first half (a queue of the fork context refused by spawn and forkserver processes) has no
        // counterpart: there is no fork, and a queue belongs to no context.
        var q = new ActorQueue<string>();
        var children = StartMethods.All.Select(m => StartMethods.GetContext(m).Process(ConformanceFunctions.PutStartMethod, q)).ToList();
        try
        {
            foreach (var p in children)
                p.Start();
            Assert.All(children, p => Assert.True(p.Join(Bound)));
            Assert.All(children, p => Assert.Equal(0, p.ExitCode));
            Assert.Equal(3, Enumerable.Range(0, 3).Select(_ => q.Get(Bound)).Count());
        }
        finally
        {
            foreach (var p in children.Where(p => p.IsAlive && p.StartMethod != "thread"))
                p.Kill();
        }
    }

    // CPython: TestStartMethod.test_nested_startmethod
    [Fact]
    public void A_child_must_pass_its_arguments_on_to_a_process_of_its_own()
    {
        var q = new ActorQueue<int>();
        var p = new ActorProcess(ConformanceFunctions.PutTwoAndNestOnce, q);
        try
        {
            p.Start();
            Assert.True(p.Join(Bound));
            Assert.Equal(0, p.ExitCode);
            var results = new HashSet<int> { q.Get(Bound), q.Get(Bound) };
            Assert.Equal([1, 2], results.Order());
            Assert.False(q.TryGet(out _));
        }
        finally
        {
            if (p.IsAlive)
                p.Kill();
        }
    }
}
